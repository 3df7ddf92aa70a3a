"""Shared parts of the VarMisuse models of "Global Relational Models of Source Code"
(Hellendoorn et al., ICLR 2020), re-implemented in PyTorch after VHellendoorn/ICLR20-Great.

The original wraps every encoder in one `VarMisuseModel` (`running/meta_model.py`):
  1. each token is the mean of its (at most 10) BPE sub-token embeddings,
  2. sinusoidal positions are added (for every encoder that does not start with an RNN, i.e. also GGNN),
  3. the encoder (Transformer, GREAT or GGNN; see the sibling modules) maps states to states,
  4. one Dense(2) gives two pointers per token: bug location [..., 0] and repair [..., 1].
The loss and accuracies follow the original's `get_loss`, but are returned per sample so that the
study can log per-sample losses; `reduce_losses` and `batch_accuracies` give the original's batch means.
`varmisuse_dynamics` gives the given labels' margins and probabilities (codemem.detection).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from codemem.model_configs import VarMisuseConfig


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """`models/util.py::positional_encoding`, reproduced exactly: angle pos / 10000^(2i/dim) for every
    feature i (not 2*(i//2) as in Vaswani et al.), sine on even and cosine on odd features."""
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    i = torch.arange(dim, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(10000.0, 2 * i / dim)
    table = torch.where(i.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float()


def glorot_(weight: torch.Tensor, fan_in: int, fan_out: int) -> torch.Tensor:
    """Keras `glorot_uniform` with explicit fans: Keras computes fans from the original variable's shape
    (e.g. (hidden, heads, head_dim) for attention), which differs from the PyTorch matrix shape."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return weight.uniform_(-limit, limit)


class VarMisuseModel(nn.Module):
    """Embedding -> `encode` (implemented by the subclasses) -> Dense(2) location/repair logits."""

    def __init__(self, config: VarMisuseConfig):
        super().__init__()
        self.config = config
        # The original draws the shared embedding from N(0, hidden^-0.5); PAD (row 0) stays a trainable
        # row but is masked out of every token mean, so it never receives a gradient.
        self.embed = nn.Embedding(config.vocab_size, config.hidden)
        nn.init.normal_(self.embed.weight, std=config.hidden**-0.5)
        self.head = nn.Linear(config.hidden, 2)  # two pointers: bug location, repair
        glorot_(self.head.weight, config.hidden, 2)
        nn.init.zeros_(self.head.bias)
        # 5,000 positions as in the original; a buffer, not a parameter (and not saved in checkpoints).
        self.register_buffer("pos_enc", sinusoidal_positions(5000, config.hidden), persistent=False)

    def encode(self, states: torch.Tensor, token_mask: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, subtokens: torch.Tensor, token_mask: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        """subtokens (B, T, S<=max_subtokens) ids, 0 = PAD; token_mask (B, T) bool; edges (E, 4) rows
        [batch_index, edge_type, from_pos, to_pos]. Returns logits (B, T, 2)."""
        assert subtokens.size(-1) <= self.config.max_subtokens
        emb = self.embed(subtokens) * (subtokens > 0).unsqueeze(-1)
        # The original pads every token to exactly max_subtokens slots and takes reduce_mean over them,
        # i.e. divides by 10 whatever the number of real sub-tokens; dividing by the config value keeps
        # that even when a batch is padded to fewer slots.
        states = emb.sum(dim=2) / self.config.max_subtokens
        states = states + self.pos_enc[: states.size(1)]
        states = self.encode(states, token_mask.bool(), edges.long())
        return self.head(states)


def _masked_pointers(logits: torch.Tensor, token_mask: torch.Tensor, repair_candidates_mask: torch.Tensor):
    """Location logits over valid tokens; repair pointer probabilities over repair candidates only."""
    neg = torch.finfo(logits.dtype).min  # the original adds float32.min; filling avoids -inf sums
    loc_logits = logits[..., 0].masked_fill(~token_mask, neg)
    rep_logits = logits[..., 1].masked_fill(~(token_mask & repair_candidates_mask), neg)
    return loc_logits, rep_logits.softmax(dim=-1)


def varmisuse_losses(
    logits, token_mask, has_bug, error_location, repair_targets_mask, repair_candidates_mask
):
    """Per-sample (location loss, repair loss), both (B,), after the original's `get_loss`.

    Location: cross-entropy of `error_location` (0 = no bug) among the valid tokens, for every sample.
    Repair: -log(pointer mass on the repair targets + 1e-9), the pointer being a softmax over the repair
    candidates only; 0 for clean samples (the original tells them apart by error_location == 0, which is
    has_bug for well-formed data)."""
    loc_logits, rep_probs = _masked_pointers(logits, token_mask.bool(), repair_candidates_mask.bool())
    loc_loss = F.cross_entropy(loc_logits, error_location.long(), reduction="none")
    target_mass = (rep_probs * repair_targets_mask).sum(dim=-1)
    rep_loss = torch.where(has_bug.bool(), -torch.log(target_mass + 1e-9), torch.zeros_like(target_mass))
    return loc_loss, rep_loss


def reduce_losses(loc_loss: torch.Tensor, rep_loss: torch.Tensor, has_bug: torch.Tensor) -> torch.Tensor:
    """The original's training objective: mean location loss over all samples + mean repair loss over
    buggy samples (its 1e-9 guards a batch without bugs)."""
    return loc_loss.mean() + rep_loss.sum() / (has_bug.float().sum() + 1e-9)


@torch.no_grad()
def varmisuse_predictions(
    logits, token_mask, has_bug, error_location, repair_targets_mask, repair_candidates_mask
) -> dict[str, torch.Tensor]:
    """Per-sample outcomes, (B,) each, for all samples; average them as the original does:
    'loc_correct', 'repair_correct', 'joint_correct' over buggy samples, 'no_bug_correct' over clean ones.

    loc_correct:    argmax of the location pointer == error_location
    no_bug_correct: the location pointer picks position 0, i.e. predicts "no bug"
    repair_mass:    pointer mass on the repair targets (0 when there are none, e.g. clean samples)
    repair_correct: repair_mass >= 0.5, the original's shortcut for "top guess is right"
    joint_correct:  loc_correct and repair_correct
    loc_prob:       softmax probability at the *predicted* location (the study's "predicted score")
    `has_bug` is accepted for a uniform signature; the outcomes do not depend on it."""
    loc_logits, rep_probs = _masked_pointers(logits, token_mask.bool(), repair_candidates_mask.bool())
    loc_prob, loc_pred = loc_logits.softmax(dim=-1).max(dim=-1)
    loc_correct = loc_pred == error_location
    repair_mass = (rep_probs * repair_targets_mask).sum(dim=-1)
    repair_correct = repair_mass >= 0.5
    return {
        "loc_correct": loc_correct,
        "repair_correct": repair_correct,
        "joint_correct": loc_correct & repair_correct,
        "no_bug_correct": loc_pred == 0,
        "loc_prob": loc_prob,
        "repair_mass": repair_mass,
    }


@torch.no_grad()
def varmisuse_dynamics(
    logits, token_mask, has_bug, error_location, repair_targets_mask, repair_candidates_mask
) -> dict[str, torch.Tensor]:
    """Per-sample training dynamics of the given labels (codemem.detection), (B,) each, over the same
    pointers as `varmisuse_losses` / `varmisuse_predictions` (their masked positions left out):

    loc_margin:    the given location's logit (`error_location`, 0 = no bug; float32.min, as the
                   loss has it, if that token is masked) minus the largest logit at any other valid
                   token (+inf where there is none)
    loc_given_prob: the location softmax's probability of the given location, exp(-location loss)
    repair_margin: the best repair-target logit minus the best non-target logit, both among the repair
                   candidates at valid tokens (the repair pointer's support); NaN for a sample labelled
                   clean (`has_bug` false: no repair label), -inf where no target is a candidate, +inf
                   where every candidate is a target."""
    token_mask = token_mask.bool()
    loc_logits, _ = _masked_pointers(logits, token_mask, repair_candidates_mask.bool())
    given = error_location.long()[:, None]
    neg_inf = torch.tensor(float("-inf"), dtype=logits.dtype, device=logits.device)
    others = torch.ones_like(token_mask).scatter(1, given, False) & token_mask
    loc_margin = loc_logits.gather(1, given).squeeze(1) - loc_logits.where(others, neg_inf).amax(dim=-1)
    loc_given_prob = loc_logits.softmax(dim=-1).gather(1, given).squeeze(1)
    support = token_mask & repair_candidates_mask.bool()
    targets = support & repair_targets_mask.bool()
    best_target = logits[..., 1].where(targets, neg_inf).amax(dim=-1)
    repair_margin = best_target - logits[..., 1].where(support & ~targets, neg_inf).amax(dim=-1)
    repair_margin = repair_margin.where(has_bug.bool(), torch.full_like(repair_margin, float("nan")))
    return {"loc_margin": loc_margin, "loc_given_prob": loc_given_prob, "repair_margin": repair_margin}


def batch_accuracies(predictions: dict[str, torch.Tensor], has_bug: torch.Tensor) -> dict[str, float]:
    """The original's four accuracies (NaN where the batch has no sample of the relevant kind)."""
    buggy, clean = has_bug.bool(), ~has_bug.bool()

    def mean_over(key, rows):
        return predictions[key][rows].float().mean().item() if rows.any() else float("nan")

    return {
        "no_bug": mean_over("no_bug_correct", clean),
        "localization": mean_over("loc_correct", buggy),
        "repair": mean_over("repair_correct", buggy),
        "joint": mean_over("joint_correct", buggy),
    }

