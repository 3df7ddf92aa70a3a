"""code2seq (Alon et al., ICLR 2019) for MethodName in PyTorch, with the original default configuration:
the reference.

Written as tech-srl/code2seq's `model.py` computes it (`config.py`, `reader.py` and `common.py` for
the rest), step by step; code2seq_fast.py is the same model computed for less (the default,
`train.implementation: fast`), held to this one by tests/test_reference_models.py. What maps its
parameters onto the original's TF variables is in tf_fidelity.py.

A method is a bag of path-contexts. Each context is [sum of the source terminal's sub-token
embeddings (128); the final states of a BiLSTM (2 x 128) over the path's node embeddings; sum of the
target terminal's sub-tokens (128)] -> dropout (keep 0.75) -> bias-free dense to 320 with tanh. A
one-layer LSTM decoder (320), started from the mean of the valid contexts (h = c = mean), attends
over the contexts (Luong, as `tf.contrib.seq2seq.AttentionWrapper(LuongAttention)`), feeds its
attention output back into the next step's input ([target embedding 128; attention 320]) and projects
the (dropped-out) attention output to the target sub-tokens without bias. Teacher forcing in
training, greedy decoding at inference.

Two behaviours of the original that change the numbers, both kept here by default:
- Attention over padded contexts. Every sample has MAX_CONTEXTS (200) slots, padding included, and
  `LuongAttention` gets no `memory_sequence_length` (model.py, decode_outputs), so each padded slot
  (a zero vector: zero key, score 0) takes softmax mass exp(0) while adding nothing to the attended
  context. A batch narrower than `max_contexts` is padded back to it (`_memory`), so it may be cut
  to its widest sample without changing any number. `mask_padded_contexts=True` instead gives
  padding no attention (what `memory_sequence_length` would do).
- Greedy decoding is `dynamic_decode(BasicDecoder(GreedyEmbeddingHelper(..., end_token=0)))` without
  `impute_finished`: a sequence that has emitted the end token keeps decoding (its next input is the
  end token's embedding, then its own argmax) until every sequence of the batch has ended or
  MAX_TARGET_PARTS + 1 steps have run; the evaluation then maps all those ids to strings and drops
  only <UNK>, <PAD> and </S> (`Common.filter_impossible_names`), so sub-tokens emitted after the end
  token count. A prediction thus depends on its batch through the batch's decoding length:
  `cut_like_dynamic_decode` applies the original's batches to sequences decoded to the full length.

Trainable parameters (TF graph): 128 (|sub-tokens| + |nodes| + |targets|) + 320 |targets| + 1,718,528.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from codemem.model_configs import Code2SeqConfig

# Special tokens as in the original: sub-token and node vocabularies start [<PAD>, <UNK>], the target
# vocabulary [<PAD>, <UNK>, <S>] (model.py, Common.load_vocab_from_dict). common.py defines `</S>` but
# never adds it to a vocabulary: reader.py appends index 0 to every target and both decoders stop at
# end_token 0, so <PAD> (id 0) doubles as the end-of-sequence token.
PAD, UNK, SOS, EOS = "<PAD>", "<UNK>", "<S>", "</S>"
SUBTOKEN_SPECIALS = NODE_SPECIALS = (PAD, UNK)
TARGET_SPECIALS = (PAD, UNK, SOS)
PAD_ID, UNK_ID, SOS_ID = 0, 1, 2
EOS_ID = PAD_ID
# What the evaluation drops from a predicted (and the true) sequence: Common.filter_impossible_names
# (common.py) removes exactly these; <S> is kept, as a sub-token no true name has.
FILTERED_TARGETS = (UNK, PAD, EOS)
STUDY_SCORE_TOP_K = 10  # the study's logging patch scores a step by a softmax over its top-10 logits
TF_FORGET_BIAS = 1.0  # tf.nn.rnn_cell.LSTMCell adds this constant to the forget gate pre-activation
DECODER_CELL = "model/decoder/attention_wrapper/multi_rnn_cell/cell_0/lstm_cell"


def lstm_weights(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(TF scope, module, parameter-name suffix) of each LSTM, in the original's variable order."""
    return [
        ("model/bidirectional_rnn/fw/lstm_cell", model.path_lstm, "_l0"),
        ("model/bidirectional_rnn/bw/lstm_cell", model.path_lstm, "_l0_reverse"),
        (DECODER_CELL, model.decoder_cell, ""),
    ]


def _glorot_(*weights: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """TF's default initialiser (glorot uniform) for a kernel of shape [fan_in, fan_out]."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    for w in weights:
        nn.init.uniform_(w, -limit, limit)


@torch.no_grad()
def init_like_tf(model: nn.Module) -> None:
    """The original's initialisers, for either implementation (the same parameters and draws)."""
    for e in (model.subtoken_embedding, model.node_embedding, model.target_embedding):
        # variance_scaling_initializer(factor=1.0, mode='FAN_OUT', uniform=True); fan_out = shape[-1]
        nn.init.uniform_(e.weight, -math.sqrt(3.0 / e.embedding_dim), math.sqrt(3.0 / e.embedding_dim))
    for _, module, suffix in lstm_weights(model):
        w_ih, w_hh, b_ih, b_hh = (
            getattr(module, n + suffix) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        hidden = w_hh.shape[1]
        _glorot_(w_ih, w_hh, fan_in=w_ih.shape[1] + hidden, fan_out=4 * hidden)  # one TF kernel
        b_ih.zero_()  # TF's single trainable bias, zeros
        # PyTorch's second bias holds TF's constant forget_bias and is frozen, so the trainable
        # parameters are exactly the original's (gate order i, f, g, o).
        b_hh.zero_()[hidden : 2 * hidden] = TF_FORGET_BIAS
        b_hh.requires_grad_(False)
    for lin in (model.context_dense, model.memory_layer, model.attention_layer, model.projection):
        _glorot_(lin.weight, fan_in=lin.in_features, fan_out=lin.out_features)


def target_step_mask(target: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: the target's sub-tokens and its first EOS (the original's target_lengths + 1)."""
    return torch.arange(target.shape[1], device=target.device) <= first_end_steps(target).unsqueeze(1)


class Code2Seq(nn.Module):
    """`Model` of model.py: `compute_contexts` (encoder), `decode_outputs` (decoder), the loss of
    `build_training_graph` and the greedy decoding of `build_test_graph` (BEAM_WIDTH = 0)."""

    def __init__(
        self,
        subtoken_vocab_size: int,
        node_vocab_size: int,
        target_vocab_size: int,
        config: Code2SeqConfig = Code2SeqConfig(),
        max_contexts: int = 200,
    ):
        """`max_contexts`: the context slots of every sample, padding included (MAX_CONTEXTS; the
        training passes extract.max_contexts), over which the attention's softmax runs."""
        super().__init__()
        self.config = c = config
        self.max_contexts = max_contexts
        emb, half, dec = c.embedding_size, c.rnn_size // 2, c.decoder_size
        self.subtoken_embedding = nn.Embedding(subtoken_vocab_size, emb)  # model/SUBTOKENS_VOCAB
        self.node_embedding = nn.Embedding(node_vocab_size, emb)  # model/NODES_VOCAB
        self.target_embedding = nn.Embedding(target_vocab_size, emb)  # model/TARGET_WORDS_VOCAB
        self.path_lstm = nn.LSTM(emb, half, batch_first=True, bidirectional=True)  # bidirectional_rnn
        self.context_dropout = nn.Dropout(1.0 - c.embeddings_dropout_keep)
        self.context_dense = nn.Linear(2 * emb + c.rnn_size, dec, bias=False)  # model/dense
        self.decoder_cell = nn.LSTMCell(emb + dec, dec)
        self.memory_layer = nn.Linear(dec, dec, bias=False)  # LuongAttention keys
        self.attention_layer = nn.Linear(2 * dec, dec, bias=False)  # AttentionWrapper output, no tanh
        self.output_dropout = nn.Dropout(1.0 - c.rnn_dropout_keep)  # DropoutWrapper(output_keep_prob)
        self.projection = nn.Linear(dec, target_vocab_size, bias=False)  # model/decoder/dense
        init_like_tf(self)

    # ----- encoder: model.py compute_contexts, path_rnn_last_state -----
    def _sum_subtokens(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., P) sub-token ids -> (..., E): the sum of the embeddings within the terminal's length."""
        return (self.subtoken_embedding(ids) * (ids != PAD_ID).unsqueeze(-1)).sum(-2)

    def _encode_paths(self, path: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, L) nodes -> (N, rnn_size): `bidirectional_dynamic_rnn(sequence_length=lengths)`'s final
        states [fw h; bw h]; a path of length 0 has the zero state.

        The original wraps both path LSTMs in DropoutWrapper(output_keep_prob), but only their final
        *states* are used and that wrapper leaves states untouched, so no dropout reaches the model.
        """
        lengths = lengths.clamp(0, path.shape[1])
        # pack_padded_sequence refuses length 0: such a path runs one step, and its state is zeroed.
        packed = nn.utils.rnn.pack_padded_sequence(
            self.node_embedding(path), lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = self.path_lstm(packed)  # h_n: (2 directions, N, rnn_size / 2)
        return torch.cat([h_n[0], h_n[1]], dim=-1) * (lengths > 0).unsqueeze(-1)

    def encode(self, source, path, path_lengths, target_terminal, context_mask) -> torch.Tensor:
        """Contexts (B, C, decoder_size); padded contexts are exact zeros, as in the original (an
        empty context of the reader: no sub-tokens, a path of length 0, so tanh(0 W) = 0)."""
        b, c = context_mask.shape
        context_embed = torch.cat([
            self._sum_subtokens(source),
            self._encode_paths(path.flatten(0, 1), path_lengths.flatten()).view(b, c, -1),
            self._sum_subtokens(target_terminal),
        ], dim=-1) * context_mask.unsqueeze(-1)  # fmt: skip
        return torch.tanh(self.context_dense(self.context_dropout(context_embed)))

    # ----- decoder: model.py decode_outputs -----
    def _memory(self, contexts, mask):
        """The contexts as the original's attention sees them: `max_contexts` slots a sample, those
        beyond the given width padding (zero vectors). A wider tensor is kept as it is."""
        missing = max(self.max_contexts - contexts.shape[1], 0)
        return F.pad(contexts, (0, 0, 0, missing)), F.pad(mask, (0, missing))

    def _start(self, contexts, mask):
        """The initial state: h = c = the mean of the valid contexts (`fake_encoder_state`), zero
        attention (`zero_state`); and LuongAttention's keys, memory_layer(contexts)."""
        n_valid = mask.sum(1, keepdim=True).clamp(min=1).to(contexts.dtype)
        mean = (contexts * mask.unsqueeze(-1)).sum(1) / n_valid
        return (mean, mean), torch.zeros_like(mean), self.memory_layer(contexts)

    def _attend(self, h, keys, contexts, mask):
        """LuongAttention (dot score on the keys, no scale) over every slot, padding included unless
        `mask_padded_contexts`, then the AttentionWrapper's output attention_layer([h; context])."""
        scores = torch.bmm(keys, h.unsqueeze(-1)).squeeze(-1)  # (B, slots)
        if self.config.mask_padded_contexts:
            # A method without any valid context keeps its (zero) scores rather than becoming NaN.
            scores = scores.masked_fill(~(mask | ~mask.any(1, keepdim=True)), float("-inf"))
        alpha = torch.softmax(scores, dim=-1)
        context = torch.bmm(alpha.unsqueeze(1), contexts).squeeze(1)  # (B, decoder_size)
        return self.attention_layer(torch.cat([h, context], dim=-1)), alpha

    def _step(self, prev_ids, state, attention, keys, contexts, mask):
        """One AttentionWrapper step: the cell's input is [embedding of the previous id; previous
        attention]; dropout (training) only on the output that reaches the projection."""
        h, c = self.decoder_cell(torch.cat([self.target_embedding(prev_ids), attention], dim=-1), state)
        attention, _ = self._attend(h, keys, contexts, mask)
        return self.projection(self.output_dropout(attention)), (h, c), attention

    def forward(
        self, source, path, path_lengths, target_terminal, context_mask, target, reduction: str = "mean"
    ) -> torch.Tensor:
        """Per-sample teacher-forced cross-entropy (B,) over the target's sub-tokens and its EOS.

        reduction="mean" (default): mean over those steps.
        reduction="sum": their sum; the original optimises `sum(...) / batch`, i.e. this `.mean()`.
        reduction="steps": (each step's masked cross-entropy (B, T), each step's argmax (B, T)): the
        original's `example_loss` and `outputs.sample_id` (model.py, `build_training_graph`).
        """
        mask = context_mask.bool()
        contexts = self.encode(source, path, path_lengths, target_terminal, mask)
        return self._teacher_forced(contexts, mask, target, reduction)

    def _teacher_forced(self, contexts, mask, target, reduction: str = "mean") -> torch.Tensor:
        """TrainingHelper: step t reads target t - 1 (<S> first); `sparse_softmax_cross_entropy_with_logits`
        weighted by `sequence_mask(target_lengths + 1)`."""
        contexts, mask = self._memory(contexts, mask)
        state, attention, keys = self._start(contexts, mask)
        inputs = torch.cat([torch.full_like(target[:, :1], SOS_ID), target[:, :-1]], dim=1)
        logits = []
        for t in range(target.shape[1]):
            step_logits, state, attention = self._step(inputs[:, t], state, attention, keys, contexts, mask)
            logits.append(step_logits)
        stacked = torch.stack(logits, dim=2)  # (B, vocabulary, T)
        crossent = F.cross_entropy(stacked, target, reduction="none")  # (B, T)
        steps = target_step_mask(target).to(crossent.dtype)
        if reduction == "steps":
            return crossent * steps, stacked.detach().argmax(1)
        total = (crossent * steps).sum(1)
        if reduction == "sum":
            return total
        if reduction != "mean":
            raise ValueError(f"reduction must be 'mean', 'sum' or 'steps', not {reduction!r}")
        return total / steps.sum(1)

    @torch.no_grad()
    def greedy(
        self, source, path, path_lengths, target_terminal, context_mask, full: bool = False, top_k: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding (BEAM_WIDTH = 0) of one batch; call `.eval()` first, as the original's test
        graph has no dropout.

        Returns ids (B, max_target_parts + 1) and the per-sample score: the mean top-1 softmax
        probability over the sample's own steps (up to and including its first end token).
        As `dynamic_decode` without `impute_finished`: a sequence that has ended keeps its later
        outputs, and decoding stops once every sequence of the batch has ended (the steps not run
        are PAD). `full=True` runs all steps whatever the batch, for `cut_like_dynamic_decode`.
        `top_k > 0` returns, in place of the score, every step's top-1 probability under a softmax
        over that step's `top_k` largest logits, (B, steps): the study's patch averages those over
        the first len(prediction) steps (`study_scores`).
        """
        mask = context_mask.bool()
        return self._greedy(self.encode(source, path, path_lengths, target_terminal, mask), mask, full, top_k)

    @torch.no_grad()
    def greedy_and_loss(
        self, source, path, path_lengths, target_terminal, context_mask, target,
        full: bool = False, top_k: int = 0,
    ):
        """`greedy(...)` and the per-sample mean loss `forward(..., target)` from one encoding."""
        mask = context_mask.bool()
        contexts = self.encode(source, path, path_lengths, target_terminal, mask)
        return (*self._greedy(contexts, mask, full, top_k), self._teacher_forced(contexts, mask, target))

    def _greedy(self, contexts, mask, full: bool = False, top_k: int = 0):
        """GreedyEmbeddingHelper(start <S>, end_token 0) in dynamic_decode, without impute_finished."""
        contexts, mask = self._memory(contexts, mask)
        state, attention, keys = self._start(contexts, mask)
        n_steps = self.config.max_target_parts + 1
        ids = torch.full((mask.shape[0], n_steps), PAD_ID, dtype=torch.long, device=mask.device)
        probabilities = torch.zeros(ids.shape, device=mask.device)  # each step's top-1 probability
        step_top = torch.zeros(ids.shape, device=mask.device)  # ... under a softmax over the top_k
        prev = torch.full_like(ids[:, 0], SOS_ID)
        for t in range(n_steps):
            # The next input is the embedding of this step's argmax, ended or not.
            logits, state, attention = self._step(prev, state, attention, keys, contexts, mask)
            probabilities[:, t], prev = torch.softmax(logits.float(), dim=-1).max(-1)
            if top_k:
                top = logits.float().topk(min(top_k, logits.shape[-1]), dim=-1).values
                step_top[:, t] = torch.softmax(top, dim=-1)[:, 0]
            ids[:, t] = prev
            if not full and bool((ids[:, : t + 1] == EOS_ID).any(1).all()):  # every sequence has ended
                break
        if top_k:
            return ids, step_top
        # The score averages a sample's steps up to and including its first end token.
        own_steps = (torch.arange(n_steps, device=ids.device) <= first_end_steps(ids).unsqueeze(1)).float()
        return ids, (probabilities * own_steps).sum(1) / own_steps.sum(1)


def first_end_steps(ids: torch.Tensor) -> torch.Tensor:
    """(B,) the step of each sequence's first end token, or the last step if it never ends."""
    is_end = ids == EOS_ID
    return torch.where(is_end.any(1), is_end.int().argmax(1), torch.full_like(ids[:, 0], ids.shape[1] - 1))


def cut_like_dynamic_decode(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """What the original's evaluation gets from sequences decoded to the full length (`full=True`),
    row i in order, batched `batch_size` at a time (its reader: TEST_BATCH_SIZE, file order):
    each batch's outputs stop after the step where its last sequence ended (PAD after)."""
    ends = first_end_steps(ids)
    out = ids.clone()
    for start in range(0, len(ids), batch_size):
        last = int(ends[start : start + batch_size].max())
        out[start : start + batch_size, last + 1 :] = PAD_ID
    return out


def study_scores(step_top: torch.Tensor, prediction_lengths: torch.Tensor) -> torch.Tensor:
    """The study's per-sample score (its logging patch): the mean of the per-step top-1
    probabilities (softmax over each step's top-10 logits, `greedy(top_k=10)`) over the first k
    steps, k = the number of sub-tokens in the filtered prediction; 0 for an empty prediction."""
    k = prediction_lengths.clamp(max=step_top.shape[1])
    first_k = torch.arange(step_top.shape[1], device=step_top.device) < k[:, None]
    return (step_top * first_k).sum(1) / k.clamp(min=1)


def study_step_loss(step_losses: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """The study's per-sample training loss (CI-Memorization `model/code2seq/model.py`,
    `update_correct_predictions`: `mean(example_loss[:len(filtered prediction)])`): k = the number of
    sub-tokens left in the step's teacher-forced argmax `predicted` (B, T) once <UNK>, <PAD> and </S>
    are dropped (anywhere in the sequence); the mean of the masked per-step cross-entropies
    `step_losses` (B, T) over the first k steps (a step past the target's end counts as 0); 0 when
    k = 0."""
    k = ((predicted != PAD_ID) & (predicted != UNK_ID)).sum(1)  # </S> is PAD (EOS_ID): no id of its own
    first_k = torch.arange(step_losses.shape[1], device=step_losses.device) < k[:, None]
    return (step_losses * first_k).sum(1) / k.clamp(min=1)


def predicted_subtokens(ids, targets: list[str]) -> list[str]:
    """A decoded id sequence as the original's evaluation reads it: every step's sub-token, after
    the end token too, less <UNK>, <PAD> and </S> (Common.filter_impossible_names)."""
    return [targets[i] for i in ids if targets[i] not in FILTERED_TARGETS]


def make_optimizer(model: nn.Module, config: Code2SeqConfig) -> torch.optim.Optimizer:
    """MomentumOptimizer(0.01, 0.95, use_nesterov=True); PyTorch's Nesterov SGD is the same update.

    One difference remains: TF updates embedding rows (and their momentum) only where a batch touches
    them (sparse gradients), while this dense SGD keeps moving untouched rows by their momentum.
    """
    params = [p for p in model.parameters() if p.requires_grad]  # the frozen forget-bias constants stay out
    return torch.optim.SGD(
        params, lr=config.learning_rate, momentum=config.momentum, nesterov=config.nesterov
    )


def make_scheduler(optimizer: torch.optim.Optimizer, config: Code2SeqConfig):
    """lr x0.95 per epoch (exponential_decay, staircase over num_training_examples); step once per epoch."""
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay_per_epoch)
