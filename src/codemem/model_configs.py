"""Each model's configuration: the original's defaults, as dataclasses without torch.

params.py validates a run's settings against these before any stage starts, so fetch, extract and
corrupt need neither the model code nor torch (~220 MB a process); each model file imports its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field


# codemem/varmisuse/pointer_model.py
@dataclass(frozen=True)
class VarMisuseConfig:
    """ICLR20-Great `config.yml` base defaults (model `base`, `data` and `training` sections)."""

    vocab_size: int = 14281  # 14,280 BPE sub-tokens + PAD (id 0), as in `data/vocabulary.py`
    hidden: int = 512
    dropout: float = 0.1
    num_edge_types: int = 24
    max_subtokens: int = 10  # `max_token_length`: sub-tokens kept per token
    learning_rate: float = 1e-4  # Adam
    clip_norm: float = 0.25  # global gradient-norm clipping
    max_batch_tokens: int = 12500  # `max_batch_size`: padded tokens per batch
    max_length: int = 512  # `max_sequence_length`: longer functions are skipped
    # Steps of `train.samples_per_step` samples: the study ran 50 steps of 250,000 (the original's
    # limit is 100). The `cpu` profile (params.py) runs a reduced model that learns in ~15 minutes.
    epochs: int = 50


# codemem/varmisuse/transformer.py
@dataclass(frozen=True)
class TransformerConfig(VarMisuseConfig):
    """ICLR20-Great `config.yml`, section `transformer`."""

    num_layers: int = 6
    num_heads: int = 8
    attention_dim: int = 512
    ff_dim: int = 2048


# codemem/varmisuse/great.py
@dataclass(frozen=True)
class GREATConfig(TransformerConfig):
    """ICLR20-Great `config.yml`: the `transformer` section; the edge bias uses base `num_edge_types`."""


# codemem/varmisuse/ggnn.py
@dataclass(frozen=True)
class GGNNConfig(VarMisuseConfig):
    """ICLR20-Great `config.yml`, section `ggnn`."""

    time_steps: tuple[int, ...] = (3, 1, 3, 1)
    residuals: dict[int, tuple[int, ...]] = field(default_factory=lambda: {1: (0,), 3: (0, 1)})
    add_type_bias: bool = True


# codemem/methodname/code2vec.py
@dataclass(frozen=True)
class Code2VecConfig:
    token_embedding_size: int = 128
    path_embedding_size: int = 128
    dropout_keep: float = 0.75  # DROPOUT_KEEP_RATE on the concatenated context
    learning_rate: float = 1.0e-3  # tf.compat.v1.train.AdamOptimizer() defaults: beta 0.9/0.999, eps 1e-8
    adam_epsilon: float = 1.0e-8
    top_k: int = 10  # predictions scanned for the first possible name (F1)
    epochs: int = 50  # the study's run length on Java-Top10 and Java-Small (~7 min on 2 CPU cores)
    # Vocabulary caps (config.py MAX_TOKEN_VOCAB_SIZE, MAX_PATH_VOCAB_SIZE, MAX_TARGET_VOCAB_SIZE; the
    # preprocessing keeps the most frequent entries of the training set, the rest read as OOV). jdk-top10
    # stays far below them; a Java-Small-sized set has ~2.5M distinct paths.
    max_token_vocab: int = 1_301_136
    max_path_vocab: int = 911_417
    max_target_vocab: int = 261_245

    @property
    def code_vector_size(self) -> int:
        return 2 * self.token_embedding_size + self.path_embedding_size


# codemem/methodname/code2seq.py
@dataclass(frozen=True)
class Code2SeqConfig:
    """`Config.get_default_config` of the original (config.py), lower-cased."""

    embedding_size: int = 128  # EMBEDDINGS_SIZE: sub-tokens, nodes and target sub-tokens
    rnn_size: int = 256  # RNN_SIZE = 128 * 2 with BIRNN: two path LSTMs of 128
    decoder_size: int = 320  # DECODER_SIZE, NUM_DECODER_LAYERS = 1
    max_path_nodes: int = 9  # MAX_PATH_LENGTH = 8 + 1
    max_name_parts: int = 5  # MAX_NAME_PARTS (sub-tokens per terminal)
    max_target_parts: int = 6  # MAX_TARGET_PARTS; the decoder runs MAX_TARGET_PARTS + 1 steps
    embeddings_dropout_keep: float = 0.75  # EMBEDDINGS_DROPOUT_KEEP_PROB
    rnn_dropout_keep: float = 0.5  # RNN_DROPOUT_KEEP_PROB
    learning_rate: float = 0.01  # USE_MOMENTUM: MomentumOptimizer(exponential_decay(0.01, ...), 0.95)
    momentum: float = 0.95
    nesterov: bool = True
    lr_decay_per_epoch: float = 0.95  # staircase decay every num_training_examples samples
    subtoken_vocab_max_size: int = 190_000  # SUBTOKENS_VOCAB_MAX_SIZE (+ PAD, UNK): the most frequent
    target_vocab_max_size: int = 27_000  # TARGET_VOCAB_MAX_SIZE (+ PAD, UNK, SOS); nodes uncapped
    # The original passes no memory_sequence_length to LuongAttention, so each of the MAX_CONTEXTS -
    # n_valid padded slots (exact zero vectors there and here) scores 0 and takes softmax mass while
    # adding nothing. False (default) reproduces that; True gives padding zero attention instead.
    mask_padded_contexts: bool = False
    epochs: int = 50  # the study's run length; the `cpu` profile (params.py) runs what fits 15 minutes
