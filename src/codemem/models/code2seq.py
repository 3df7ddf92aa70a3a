"""code2seq (Alon et al., ICLR 2019) for MethodName in PyTorch, with the original default configuration.

Follows tech-srl/code2seq (`config.py`, `model.py`, `reader.py`, `common.py`). A method is a bag of
path-contexts. Each context is [sum of the source terminal's sub-token embeddings (128); the final
states of a BiLSTM (2 x 128) over the path's node embeddings; sum of the target terminal's sub-tokens
(128)] -> dropout (keep 0.75) -> bias-free dense to 320 with tanh. A one-layer LSTM decoder (320),
started from the mean of the valid contexts (h = c = mean), attends over the contexts (Luong, as
`tf.contrib.seq2seq.AttentionWrapper(LuongAttention)`), feeds its attention output back into the next
step's input ([target embedding 128; attention 320]) and projects the (dropped-out) attention output
to the target sub-tokens without bias. Teacher forcing in training, greedy decoding at inference.

Two behaviours of the original that change the numbers, both kept here by default:
- Attention over padded contexts. Every sample has MAX_CONTEXTS (200) slots, padding included, and
  `LuongAttention` gets no `memory_sequence_length` (model.py, decode_outputs), so each padded slot
  (a zero vector: zero key, score 0) takes softmax mass exp(0) while adding nothing to the attended
  context. `_attend` counts the slots beyond the given tensor's width as such padding, so a batch may
  be cut to its widest sample without changing any number. `mask_padded_contexts=True` instead gives
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

from codemem.models.configs import Code2SeqConfig
from codemem.models.dropout import ByteDropout

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


def _glorot_(*weights: torch.Tensor, fan_in: int, fan_out: int) -> None:
    """TF's default initialiser (glorot uniform) for a kernel of shape [fan_in, fan_out]."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    for w in weights:
        nn.init.uniform_(w, -limit, limit)


def _reverse_within_length(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(N, steps) gather index that reverses each row's first `length` entries (the rest stay)."""
    t = torch.arange(steps, device=lengths.device)
    return torch.where(t < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - t, t)


# The decoder's attention, one step: scores (B, C) = keys (B, C, D) . h (B, D) and the context (B, D) =
# sum_c alpha (B, C) x contexts (B, C, D). As torch.bmm their gradients for keys and contexts are
# batched outer products, a bmm with an inner dimension of 1 that MKL runs at a fraction of memory
# speed (97 ms a call on one core, over half of a code2seq training step); a broadcast multiply gives
# the same products, element by element, in a few milliseconds.
class _ScoreContexts(torch.autograd.Function):
    @staticmethod
    def forward(ctx, keys, h):
        ctx.save_for_backward(keys, h)
        return torch.bmm(keys, h.unsqueeze(-1)).squeeze(-1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        keys, h = ctx.saved_tensors
        return grad.unsqueeze(-1) * h.unsqueeze(1), torch.bmm(grad.unsqueeze(1), keys).squeeze(1)


class _WeightContexts(torch.autograd.Function):
    @staticmethod
    def forward(ctx, alpha, contexts):
        ctx.save_for_backward(alpha, contexts)
        return torch.bmm(alpha.unsqueeze(1), contexts).squeeze(1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        alpha, contexts = ctx.saved_tensors
        return torch.bmm(contexts, grad.unsqueeze(-1)).squeeze(-1), alpha.unsqueeze(-1) * grad.unsqueeze(1)


def target_step_mask(target: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: the target's sub-tokens and its first EOS (the original's target_lengths + 1)."""
    steps = target.shape[1]
    is_end = target == EOS_ID
    first_end = torch.where(is_end.any(1), is_end.int().argmax(1), torch.full_like(target[:, 0], steps - 1))
    return torch.arange(steps, device=target.device) <= first_end.unsqueeze(1)


class Code2Seq(nn.Module):
    def __init__(
        self,
        subtoken_vocab_size: int,
        node_vocab_size: int,
        target_vocab_size: int,
        config: Code2SeqConfig = Code2SeqConfig(),
        max_contexts: int = 200,
    ):
        """`max_contexts`: the context slots of every sample, padding included (MAX_CONTEXTS; the
        runner passes extract.max_contexts), over which the attention's softmax runs."""
        super().__init__()
        self.config = c = config
        self.max_contexts = max_contexts
        emb, half, dec = c.embedding_size, c.rnn_size // 2, c.decoder_size
        self.subtoken_embedding = nn.Embedding(subtoken_vocab_size, emb)  # model/SUBTOKENS_VOCAB
        self.node_embedding = nn.Embedding(node_vocab_size, emb)  # model/NODES_VOCAB
        self.target_embedding = nn.Embedding(target_vocab_size, emb)  # model/TARGET_WORDS_VOCAB
        self.path_lstm = nn.LSTM(emb, half, batch_first=True, bidirectional=True)
        self.context_dropout = ByteDropout(1.0 - c.embeddings_dropout_keep)
        self.context_dense = nn.Linear(2 * emb + c.rnn_size, dec, bias=False)  # model/dense
        self.decoder_cell = nn.LSTMCell(emb + dec, dec)
        self.memory_layer = nn.Linear(dec, dec, bias=False)  # LuongAttention keys
        self.attention_layer = nn.Linear(2 * dec, dec, bias=False)  # AttentionWrapper output, no tanh
        self.output_dropout = ByteDropout(1.0 - c.rnn_dropout_keep)
        self.projection = nn.Linear(dec, target_vocab_size, bias=False)  # model/decoder/dense
        self._init_like_tf()

    def lstm_weights(self):
        """(TF scope, module, parameter-name suffix) of each LSTM, in the original's variable order."""
        cell = "model/decoder/attention_wrapper/multi_rnn_cell/cell_0/lstm_cell"
        return [
            ("model/bidirectional_rnn/fw/lstm_cell", self.path_lstm, "_l0"),
            ("model/bidirectional_rnn/bw/lstm_cell", self.path_lstm, "_l0_reverse"),
            (cell, self.decoder_cell, ""),
        ]

    @torch.no_grad()
    def _init_like_tf(self) -> None:
        for e in (self.subtoken_embedding, self.node_embedding, self.target_embedding):
            # variance_scaling_initializer(factor=1.0, mode='FAN_OUT', uniform=True); fan_out = shape[-1]
            nn.init.uniform_(e.weight, -math.sqrt(3.0 / e.embedding_dim), math.sqrt(3.0 / e.embedding_dim))
        for _, module, suffix in self.lstm_weights():
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
        for lin in (self.context_dense, self.memory_layer, self.attention_layer, self.projection):
            _glorot_(lin.weight, fan_in=lin.in_features, fan_out=lin.out_features)

    # ----- encoder: model.py compute_contexts / path_rnn_last_state -----
    def _sum_subtokens(self, ids: torch.Tensor) -> torch.Tensor:
        """(..., P) sub-token ids -> (..., E), PAD positions masked out (sequence_mask of lengths)."""
        return (self.subtoken_embedding(ids) * (ids != PAD_ID).unsqueeze(-1)).sum(-2)

    def _encode_paths(self, path: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, L) nodes -> (N, rnn_size): [fw final h; bw final h] at the true length, 0 if empty.

        The original wraps both path LSTMs in DropoutWrapper(output_keep_prob), but only their final
        *states* are used and that wrapper leaves states untouched, so no dropout reaches the model.
        """
        lengths = lengths.clamp(0, path.shape[1])
        reversed_path = path.gather(1, _reverse_within_length(lengths, path.shape[1]))
        fw = self._lstm_final_states(path, lengths, "_l0")
        bw = self._lstm_final_states(reversed_path, lengths, "_l0_reverse")
        return torch.cat([fw, bw], dim=-1)  # empty paths: zero states from both directions

    def _lstm_final_states(self, nodes: torch.Tensor, lengths: torch.Tensor, suffix: str) -> torch.Tensor:
        """One direction of `path_lstm`: its hidden state after each row's first `length` nodes.

        The same function as nn.LSTM over packed sequences, computed once per distinct prefix: the
        paths of a batch start from a few dozen node types and share most prefixes (code2seq on
        jdk-top10: 5,900 distinct prefixes against 57,800 packed steps in a batch of 128 methods),
        and an embedding followed by the input kernel is one table lookup (nodes x 4 hidden).
        """
        w_ih, w_hh, b_ih, b_hh = (getattr(self.path_lstm, n + suffix) for n in
                                  ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))  # fmt: skip
        n_nodes = self.node_embedding.num_embeddings
        input_gates = self.node_embedding.weight @ w_ih.T + (b_ih + b_hh)  # (nodes, 4 hidden)
        h = c = w_hh.new_zeros(1, w_hh.shape[1])  # the states of the distinct prefixes so far
        prefix = torch.zeros_like(lengths)  # each row's prefix: a row of h and c
        ends, finals = [], []
        for t in range(int(lengths.max()) if lengths.numel() else 0):
            alive = (lengths > t).nonzero().squeeze(1)
            with torch.no_grad():
                distinct, inverse = torch.unique(prefix[alive] * n_nodes + nodes[alive, t], return_inverse=True)
            parent, node = distinct // n_nodes, distinct % n_nodes
            i, f, g, o = (input_gates[node] + h[parent] @ w_hh.T).chunk(4, dim=1)
            c = torch.sigmoid(f) * c[parent] + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            prefix = prefix.index_put((alive,), inverse)
            ending = (lengths[alive] == t + 1).nonzero().squeeze(1)
            ends.append(alive[ending])
            finals.append(h[inverse[ending]])
        empty = (lengths == 0).nonzero().squeeze(1)  # no nodes: the zero state
        ends.append(empty)
        finals.append(w_hh.new_zeros(len(empty), w_hh.shape[1]))
        return torch.cat(finals)[torch.cat(ends).argsort()]

    def encode(self, source, path, path_lengths, target_terminal, context_mask) -> torch.Tensor:
        """Contexts (B, C, decoder_size); padded contexts are exact zeros, as in the original."""
        mask = context_mask.bool()
        # Only valid contexts are computed (about half of a batch is padding). A padded context is
        # an exact zero vector in the original, and tanh(0 W) = 0 without a bias, so zeros are
        # scattered back in its place: the same values for less work.
        contexts = torch.cat(
            [self._sum_subtokens(source[mask]), self._encode_paths(path[mask], path_lengths[mask]),
             self._sum_subtokens(target_terminal[mask])], dim=-1,
        )  # fmt: skip
        out = contexts.new_zeros(*mask.shape, self.config.decoder_size)
        # Into fresh zeros in place (no copy); index_put_, not masked_scatter: its backward is a gather
        # (masked_select was 10% of a step).
        return out.index_put_((mask,), torch.tanh(self.context_dense(self.context_dropout(contexts))))

    # ----- decoder: model.py decode_outputs -----
    def _attend(self, h, keys, contexts, mask):
        """Luong attention (dot score on memory_layer keys, no scale), then attention_layer([h; context]).

        As the original (no memory_sequence_length), every sample has `max_contexts` slots and each
        padded one scores 0: the padded slots inside `contexts` score exactly 0 already (zero keys),
        and the `max_contexts - C` slots beyond its width C join the softmax as one extra logit,
        log(max_contexts - C), worth that many exp(0) terms. They add nothing to the context, so
        alpha (returned over the C given slots) sums to less than 1. A tensor wider than
        max_contexts keeps all its padded slots (the original never has one).
        """
        scores = _ScoreContexts.apply(keys, h)  # (B, C)
        width = scores.shape[1]
        beyond = 0 if self.config.mask_padded_contexts else self.max_contexts - width
        if self.config.mask_padded_contexts:
            # A method without any valid context keeps its (zero) scores rather than becoming NaN.
            scores = scores.masked_fill(~(mask | ~mask.any(1, keepdim=True)), float("-inf"))
        elif beyond > 0:
            scores = torch.cat([scores, scores.new_full((scores.shape[0], 1), math.log(beyond))], dim=1)
        alpha = torch.softmax(scores, dim=-1)
        if beyond > 0:
            alpha = alpha[:, :width]
        context = _WeightContexts.apply(alpha, contexts)
        return self.attention_layer(torch.cat([h, context], dim=-1)), alpha

    def _start(self, contexts, mask):
        """Initial decoder state: h = c = mean of the valid contexts; zero attention (zero_state)."""
        n_valid = mask.sum(1, keepdim=True).clamp(min=1).to(contexts.dtype)
        mean = (contexts * mask.unsqueeze(-1)).sum(1) / n_valid
        # Keys of the valid contexts only: a padded context is a zero vector, and so is its key.
        keys = contexts.new_zeros(*mask.shape, self.memory_layer.out_features)
        return (mean, mean), torch.zeros_like(mean), keys.index_put_((mask,), self.memory_layer(contexts[mask]))

    def _step(self, prev_ids, state, attention, keys, contexts, mask):
        """One AttentionWrapper step; dropout (training) only on the output that reaches the projection."""
        h, c = self.decoder_cell(torch.cat([self.target_embedding(prev_ids), attention], dim=-1), state)
        attention, _ = self._attend(h, keys, contexts, mask)
        return self.projection(self.output_dropout(attention)), (h, c), attention

    def forward(
        self, source, path, path_lengths, target_terminal, context_mask, target, reduction: str = "mean"
    ) -> torch.Tensor:
        """Per-sample teacher-forced cross-entropy (B,) over the target's sub-tokens and its EOS.

        reduction="mean" (default): mean over those steps (the study's per-sample loss).
        reduction="sum": their sum; the original optimises `sum(...) / batch`, i.e. this `.mean()`.
        """
        mask = context_mask.bool()
        contexts = self.encode(source, path, path_lengths, target_terminal, mask)
        return self._teacher_forced(contexts, mask, target, reduction)

    def _teacher_forced(self, contexts, mask, target, reduction: str = "mean") -> torch.Tensor:
        state, attention, keys = self._start(contexts, mask)
        inputs = torch.cat([torch.full_like(target[:, :1], SOS_ID), target[:, :-1]], dim=1)
        logits = []
        for t in range(target.shape[1]):
            step_logits, state, attention = self._step(inputs[:, t], state, attention, keys, contexts, mask)
            logits.append(step_logits)
        crossent = F.cross_entropy(torch.stack(logits, dim=2), target, reduction="none")  # (B, T)
        steps = target_step_mask(target).to(crossent.dtype)
        total = (crossent * steps).sum(1)
        if reduction == "sum":
            return total
        if reduction != "mean":
            raise ValueError(f"reduction must be 'mean' or 'sum', not {reduction!r}")
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
        self, source, path, path_lengths, target_terminal, context_mask, target, full: bool = False, top_k: int = 0
    ):
        """`greedy(...)` and the per-sample mean loss `forward(..., target)` from one encoding
        (the per-epoch measurement needs both)."""
        mask = context_mask.bool()
        contexts = self.encode(source, path, path_lengths, target_terminal, mask)
        return (*self._greedy(contexts, mask, full, top_k), self._teacher_forced(contexts, mask, target))

    def _greedy(self, contexts, mask, full: bool = False, top_k: int = 0):
        state, attention, keys = self._start(contexts, mask)
        n_steps = self.config.max_target_parts + 1
        ids = torch.full((mask.shape[0], n_steps), PAD_ID, dtype=torch.long, device=mask.device)
        prob_sum = torch.zeros(mask.shape[0], device=mask.device)  # float32 even under autocast
        n_decoded = torch.zeros_like(prob_sum)
        step_top = torch.zeros(ids.shape, device=mask.device) if top_k else None
        prev = torch.full_like(ids[:, 0], SOS_ID)
        finished = torch.zeros_like(mask[:, 0])
        for t in range(n_steps):
            # GreedyEmbeddingHelper: the next input is the embedding of this step's argmax, ended or not.
            logits, state, attention = self._step(prev, state, attention, keys, contexts, mask)
            prob, prev = torch.softmax(logits.float(), dim=-1).max(-1)
            if top_k:
                top = logits.float().topk(min(top_k, logits.shape[-1]), dim=-1).values
                step_top[:, t] = torch.softmax(top, dim=-1)[:, 0]
            running = ~finished
            ids[:, t] = prev
            prob_sum += prob * running
            n_decoded += running
            finished = finished | (prev == EOS_ID)
            if not full and bool(finished.all()):  # dynamic_decode stops once every sequence has ended
                break
        return ids, (step_top if top_k else prob_sum / n_decoded)


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


def original_variable_shapes(
    subtoken_vocab_size: int,
    node_vocab_size: int,
    target_vocab_size: int,
    config: Code2SeqConfig = Code2SeqConfig(),
) -> dict[str, tuple[int, ...]]:
    """The original TF graph's trainable variables (names as in its checkpoints) and their shapes."""
    emb, half, dec = config.embedding_size, config.rnn_size // 2, config.decoder_size
    shapes: dict[str, tuple[int, ...]] = {
        "model/SUBTOKENS_VOCAB": (subtoken_vocab_size, emb),
        "model/TARGET_WORDS_VOCAB": (target_vocab_size, emb),
        "model/NODES_VOCAB": (node_vocab_size, emb),
    }
    for direction in ("fw", "bw"):  # LSTMCell(RNN_SIZE / 2): kernel [input + hidden, 4 hidden]
        shapes[f"model/bidirectional_rnn/{direction}/lstm_cell/kernel"] = (emb + half, 4 * half)
        shapes[f"model/bidirectional_rnn/{direction}/lstm_cell/bias"] = (4 * half,)
    shapes["model/dense/kernel"] = (2 * emb + config.rnn_size, dec)
    shapes["model/memory_layer/kernel"] = (dec, dec)
    cell = "model/decoder/attention_wrapper/multi_rnn_cell/cell_0/lstm_cell"
    shapes[f"{cell}/kernel"] = (emb + dec + dec, 4 * dec)  # input [target embedding; attention] + hidden
    shapes[f"{cell}/bias"] = (4 * dec,)
    shapes["model/decoder/attention_wrapper/attention_layer/kernel"] = (2 * dec, dec)
    shapes["model/decoder/dense/kernel"] = (dec, target_vocab_size)
    return shapes


def original_parameter_count(
    subtoken_vocab_size: int,
    node_vocab_size: int,
    target_vocab_size: int,
    config: Code2SeqConfig = Code2SeqConfig(),
) -> int:
    shapes = original_variable_shapes(subtoken_vocab_size, node_vocab_size, target_vocab_size, config)
    return sum(math.prod(s) for s in shapes.values())


def original_variables(model: Code2Seq) -> dict[str, torch.Tensor]:
    """This model's parameters as the original's variables, in TF layout ([in, out] kernels, LSTM gates
    i, j, f, o, one bias without the constant forget_bias), detached."""
    out = {
        "model/SUBTOKENS_VOCAB": model.subtoken_embedding.weight,
        "model/TARGET_WORDS_VOCAB": model.target_embedding.weight,
        "model/NODES_VOCAB": model.node_embedding.weight,
    }
    for scope, module, suffix in model.lstm_weights():
        w_ih, w_hh, b_ih, b_hh = (
            getattr(module, n + suffix) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        k_i, k_f, k_g, k_o = torch.cat([w_ih, w_hh], dim=1).t().chunk(4, dim=1)
        b_i, b_f, b_g, b_o = (b_ih + b_hh).chunk(4)
        out[f"{scope}/kernel"] = torch.cat([k_i, k_g, k_f, k_o], dim=1)
        out[f"{scope}/bias"] = torch.cat([b_i, b_g, b_f - TF_FORGET_BIAS, b_o])
    out["model/dense/kernel"] = model.context_dense.weight.t()
    out["model/memory_layer/kernel"] = model.memory_layer.weight.t()
    out["model/decoder/attention_wrapper/attention_layer/kernel"] = model.attention_layer.weight.t()
    out["model/decoder/dense/kernel"] = model.projection.weight.t()
    return {name: value.detach() for name, value in out.items()}


def parameter_shape_mapping(model: Code2Seq) -> dict[str, tuple[int, ...]]:
    """This model's parameters expressed as the original's variable names and shapes."""
    return {name: tuple(value.shape) for name, value in original_variables(model).items()}

