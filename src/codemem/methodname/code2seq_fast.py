"""code2seq, fast: the same model as code2seq.py (the readable reference), computed for less.

`train.implementation: fast` (the default) trains this one. The differences are of cost only, and
tests/test_reference_models.py holds it to the reference (values and gradients, dropout off;
torch.autograd.gradcheck for the two autograd functions):
- the path encoder runs the path LSTM's cells once per distinct path prefix (`_lstm_final_states`),
  not nn.LSTM over packed sequences: the same final states;
- only the valid contexts are encoded and keyed; padded ones are scattered back as exact zeros;
- the attention's two products are autograd functions whose backward is a broadcast multiply, not
  bmm's batched outer products (`_ScoreContexts`, `_WeightContexts`);
- the context slots beyond a batch's width count as one softmax logit, log(max_contexts - width),
  rather than being spelled out as zero vectors;
- dropout is ByteDropout (eight decisions from one 64-bit random number), not nn.Dropout, and on the
  valid contexts only: the same distribution, other draws.

Parameters, their names and shapes, and the initialisation (the same draws) are the reference's, so a
state_dict loads into either. The vocabulary's specials, the decoding's and the evaluation's helpers,
the optimizer and the schedule are the reference's (code2seq.py).
"""

from __future__ import annotations

import math

import torch

from codemem.methodname import code2seq
from codemem.methodname.code2seq import EOS_ID, PAD_ID, SOS_ID
from codemem.methodname.dropout import ByteDropout
from codemem.model_configs import Code2SeqConfig


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


class Code2Seq(code2seq.Code2Seq):
    """The reference's modules, parameters and initial draws; its decoding drivers (`forward`,
    `greedy`, `greedy_and_loss`) run on the encoder, attention and steps below."""

    def __init__(self, subtoken_vocab_size: int, node_vocab_size: int, target_vocab_size: int,
                 config: Code2SeqConfig = Code2SeqConfig(), max_contexts: int = 200):  # fmt: skip
        super().__init__(subtoken_vocab_size, node_vocab_size, target_vocab_size, config, max_contexts)
        self.context_dropout = ByteDropout(1.0 - config.embeddings_dropout_keep)  # no parameters, no draws
        self.output_dropout = ByteDropout(1.0 - config.rnn_dropout_keep)

    # ----- encoder: model.py compute_contexts / path_rnn_last_state -----
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

    def _memory(self, contexts, mask):
        """The slots beyond the batch's width are one softmax logit in `_attend`: nothing to pad."""
        return contexts, mask

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

