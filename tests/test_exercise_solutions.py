"""Every exercise's solution is the taught code: the taught function itself, or proved
equal to the taught module on every case of its exercise.

A second copy of taught code drifts; this file keeps the two from drifting. An
exercise whose solution is not a public function of a chapter module must have an
entry in ``EQUIVALENTS``: a function that computes, with the taught module, what the
solution should return for one case.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import lessons
from lessons import exercises
from lessons.attention import AdditiveScore
from lessons.bert import (
    IGNORE_INDEX,
    BertConfig,
    BertEmbeddings,
    mask_tokens,
    mean_pooling,
    nsp_pairs,
)
from lessons.elmo import BiLM, CharCNN, Highway, ScalarMix, character_ids
from lessons.exercises import bert as bert_exercises
from lessons.exercises import elmo as elmo_exercises
from lessons.transformer import EncoderLayer

CHAPTER_MODULES = {f"lessons.{name}" for name in lessons.CHAPTER_MODULES}


def _additive_score(query, keys, w_query, w_keys, v) -> torch.Tensor:
    module = AdditiveScore(w_query.shape[1], w_keys.shape[1], w_query.shape[0])
    with torch.no_grad():
        module.query_proj.weight.copy_(w_query)
        module.key_proj.weight.copy_(w_keys)
        module.v.weight.copy_(v[None, :])
    return module(query, keys)


def _highway(x, w_transform, b_transform, w_gate, b_gate) -> torch.Tensor:
    module = Highway(x.shape[1], layers=1)
    with torch.no_grad():
        module.transform[0].weight.copy_(w_transform)
        module.transform[0].bias.copy_(b_transform)
        module.gate[0].weight.copy_(w_gate)
        module.gate[0].bias.copy_(b_gate)
    return module(x)


def _conv_max_pool(chars, weight, bias) -> torch.Tensor:
    """One filter bank of a `CharCNN` with these weights, run on embedded characters as
    CharCNN.forward runs it (the next test checks that against the whole CharCNN)."""
    filters, char_dim, width = weight.shape
    cnn = CharCNN(num_chars=2, char_dim=char_dim, filters=((width, filters),), highway_layers=0)
    conv = cnn.convolutions[0]
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return torch.relu(torch.cat([conv(chars).max(dim=2).values], dim=1))


def _scalar_mix(layers, weights, gamma) -> torch.Tensor:
    module = ScalarMix(layers.shape[0])
    with torch.no_grad():
        module.weights.copy_(weights)
        module.gamma.copy_(gamma)
    return module(layers)


def _encoder_layer(x, params, nhead, mask=None, norm_first=False) -> torch.Tensor:
    d_model, d_ff = params["norm1.weight"].shape[0], params["feed_forward.linear1.bias"].shape[0]
    layer = EncoderLayer(d_model, nhead, d_ff, dropout=0.0, norm_first=norm_first)
    layer.load_state_dict(params)
    return layer.eval()(x, mask)


def _mask_tokens(input_ids, special_tokens_mask, mask_id, vocab_size, probability, seed):
    generator = torch.Generator().manual_seed(seed)
    return mask_tokens(input_ids, special_tokens_mask, mask_id, vocab_size, probability, generator)


def _embedding_sum(input_ids, token_type_ids, word, position, token_type) -> torch.Tensor:
    """`BertEmbeddings` with these tables, its LayerNorm removed and dropout off."""
    config = BertConfig(
        vocab_size=word.shape[0],
        hidden_size=word.shape[1],
        max_position_embeddings=position.shape[0],
        type_vocab_size=token_type.shape[0],
    )
    module = BertEmbeddings(config).eval()
    module.norm = nn.Identity()
    with torch.no_grad():
        module.word_embeddings.weight.copy_(word)
        module.position_embeddings.weight.copy_(position)
        module.token_type_embeddings.weight.copy_(token_type)
    return module(input_ids, token_type_ids)


def _masked_lm_loss(logits, labels) -> torch.Tensor:
    """PyTorch's cross-entropy, which skips the label `IGNORE_INDEX` of `mask_tokens`."""
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)


def _similarity_matrix(last_hidden_state, attention_mask) -> torch.Tensor:
    pooled = mean_pooling(last_hidden_state, attention_mask)
    return F.cosine_similarity(pooled[:, None, :], pooled[None, :, :], dim=-1)


#: exercise id -> what the taught module returns for a case's arguments.
EQUIVALENTS: dict[str, Callable[..., Any]] = {
    "attention.additive_score": _additive_score,
    "elmo.highway": _highway,
    "elmo.conv_max_pool": _conv_max_pool,
    "elmo.scalar_mix": _scalar_mix,
    "transformer.encoder_layer": _encoder_layer,
    "bert.mask_tokens": _mask_tokens,
    "bert.embedding_sum": _embedding_sum,
    "bert.masked_lm_loss": _masked_lm_loss,
    "bert.similarity_matrix": _similarity_matrix,
}
#: Solutions proved equal to their module by a test of their own, below.
TESTED_BELOW = {"elmo.bidirectional_loss", "bert.nsp_pairs"}


@pytest.mark.parametrize("exercise_id", sorted(exercises.registry()))
def test_each_solution_is_taught_or_proved_equal(exercise_id: str) -> None:
    solution = exercises.get(exercise_id).solution
    taught = solution.__module__ in CHAPTER_MODULES and not solution.__name__.startswith("_")
    assert taught or exercise_id in EQUIVALENTS or exercise_id in TESTED_BELOW, (
        f"{exercise_id}: its solution {solution.__module__}.{solution.__name__} is neither a "
        "taught function nor proved equal to the taught module (add it to EQUIVALENTS)"
    )


@pytest.mark.parametrize("exercise_id", sorted(EQUIVALENTS))
def test_solution_equals_the_taught_module_on_every_case(exercise_id: str) -> None:
    exercise = exercises.get(exercise_id)
    for case in exercise.cases():
        expected = EQUIVALENTS[exercise_id](*case.args, **case.kwargs)
        got = exercise.solution(*case.args, **case.kwargs)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6, msg=case.name)


def test_the_conv_bank_equivalent_is_charcnn_itself() -> None:
    """`_conv_max_pool` runs the bank as CharCNN.forward does: check it on a real CharCNN."""
    cnn = CharCNN(num_chars=20, char_dim=3, filters=((2, 4),), highway_layers=0, output_dim=4)
    ids = torch.randint(1, 20, (2, 5, 6), generator=torch.Generator().manual_seed(0))
    chars = cnn.embedding(ids.reshape(10, 6)).transpose(1, 2)
    conv = cnn.convolutions[0]
    features = _conv_max_pool(chars, conv.weight, conv.bias)
    torch.testing.assert_close(cnn.projection(features).reshape(2, 5, 4), cnn(ids))


def test_bidirectional_loss_equals_the_bilm_loss() -> None:
    """On a real biLM: the exercise's loss of its logits is `BiLM.loss` (same lengths)."""
    torch.manual_seed(0)
    bilm = BiLM(num_words=9, char_dim=4, filters=((1, 4), (2, 4)), token_dim=6, lstm_dim=8).eval()
    words = torch.tensor([[3, 4, 5], [6, 7, 8]])
    sentences = [["a", "b", "c"], ["d", "e", "f"]]
    char_ids, mask = character_ids(sentences, bilm.max_chars)
    forward_logits, backward_logits = bilm.logits(char_ids, mask)
    tokens = torch.cat(
        [torch.full((2, 1), bilm.bos_id), words, torch.full((2, 1), bilm.eos_id)], dim=1
    )
    got = elmo_exercises.bidirectional_loss(forward_logits, backward_logits, tokens)
    torch.testing.assert_close(got, bilm.loss(char_ids, mask, words))


def _nsp_draws(documents, seed: int) -> tuple[list[bool], list[tuple[int, int]]]:
    """The draws `nsp_pairs` makes with ``seed``, replayed: which pairs are real, and for
    the others, which other document (``r`` among those other than its own) and sentence."""
    rng = random.Random(seed)
    starts = [(d, i) for d, document in enumerate(documents) for i in range(len(document) - 1)]
    labels = [1] * (len(starts) // 2) + [0] * (len(starts) - len(starts) // 2)
    rng.shuffle(labels)
    is_next, picks = [], []
    for (d, _), label in zip(starts, labels, strict=True):
        if label == 0:
            is_next.append(True)
            picks.append((0, 0))
        else:
            r = rng.randrange(len(documents) - 1)
            j = rng.choice(range(len(documents[r + (r >= d)])))
            is_next.append(False)
            picks.append((r, j))
    return is_next, picks


@pytest.mark.parametrize("seed", range(5))
def test_nsp_pairs_from_draws_equals_nsp_pairs(seed: int) -> None:
    """With the draws of `nsp_pairs` replayed, the exercise's solution builds its pairs."""
    documents = [[f"{d}.{i}" for i in range(n)] for d, n in enumerate((2, 5, 3, 2, 4))]
    got = bert_exercises.nsp_pairs_from_draws(documents, *_nsp_draws(documents, seed))
    assert got == nsp_pairs(documents, seed)
    assert {pair.label for pair in got} == {0, 1}


def test_every_chapter_solution_name_is_public() -> None:
    """A taught solution is something the chapter shows: a public name of its module."""
    for exercise_id, exercise in exercises.registry().items():
        solution = exercise.solution
        if solution.__module__ in CHAPTER_MODULES:
            module = __import__(solution.__module__, fromlist=["_"])
            assert getattr(module, solution.__name__) is solution, exercise_id
            assert solution.__name__ in module.__all__, exercise_id


def test_equivalents_cover_only_registered_exercises() -> None:
    assert set(EQUIVALENTS) | TESTED_BELOW <= set(exercises.registry())


# --- Chapter 6, the Reformer: its solutions against lessons.reformer --------------------------


def _reformer_equivalents() -> dict[str, Callable[..., Any]]:
    """exercise id -> what lessons.reformer returns for a case's arguments (the sublayers
    of the cases hold the chapter's modules in ``.module``)."""
    from lessons import reformer

    def angular_hash(vectors, rotation):
        rotations = rotation[None, :, None, :]  # (heads, d, rounds, num_buckets // 2)
        buckets = reformer.hash_vectors(vectors[None, None], 2 * rotation.shape[1], 1, rotations)
        return buckets[0, 0, 0]

    def sort_and_chunk(buckets, chunk_length):
        order, _ = reformer.sort_by_bucket(buckets[None, None])
        return order[0, 0], order.unflatten(2, (-1, chunk_length))[0, 0]

    def look_one_back(chunks):
        return reformer.look_adjacent(chunks[None, None], before=1, after=0)[0, 0]

    def reversible_forward(x1, x2, f, g):
        return reformer.ReversibleBlock(f.module, g.module)(x1, x2)

    def reversible_inverse(y1, y2, f, g):
        return reformer.ReversibleBlock(f.module, g.module).inverse(y1, y2)

    def chunked_feed_forward(x, feed_forward, chunk_size):
        return reformer.ChunkedFeedForward(feed_forward.module, chunk_size)(x)

    return {
        "reformer.angular_hash": angular_hash,
        "reformer.sort_and_chunk": sort_and_chunk,
        "reformer.look_one_back": look_one_back,
        "reformer.reversible_forward": reversible_forward,
        "reformer.reversible_inverse": reversible_inverse,
        "reformer.chunked_feed_forward": chunked_feed_forward,
        "reformer.combine_rounds": reformer.combine_rounds,
    }


REFORMER_EQUIVALENTS = _reformer_equivalents()
TESTED_BELOW.update(REFORMER_EQUIVALENTS)


@pytest.mark.parametrize("exercise_id", sorted(REFORMER_EQUIVALENTS))
def test_reformer_solution_equals_the_taught_module_on_every_case(exercise_id: str) -> None:
    exercise = exercises.get(exercise_id)
    for case in exercise.cases():
        with torch.no_grad():
            expected = REFORMER_EQUIVALENTS[exercise_id](*case.args, **case.kwargs)
            got = exercise.solution(*case.args, **case.kwargs)
        torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=case.name)


def test_reformer_angular_hash_equals_hash_vectors_with_its_own_rotations() -> None:
    """Beyond the cases: several heads and rounds, and the rotations `hash_rotations` draws,
    each head and round hashed on its own with the exercise's function (before offsets)."""
    from lessons.exercises.reformer import angular_hash
    from lessons.reformer import hash_rotations, hash_vectors

    vectors = torch.randn(2, 3, 10, 4, generator=torch.Generator().manual_seed(0))
    rotations = hash_rotations(3, 4, num_hashes=2, num_buckets=6, seed=1)
    buckets = hash_vectors(vectors, 6, 2, rotations)
    for b, h, r in [(b, h, r) for b in range(2) for h in range(3) for r in range(2)]:
        expected = buckets[b, h, r] - 6 * r
        assert torch.equal(angular_hash(vectors[b, h], rotations[h, :, r]), expected)


# --- Chapter 7, big models on small GPUs: its solutions against lessons.memory ----------------


def _memory_equivalents() -> dict[str, Callable[..., Any]]:
    """exercise id -> what lessons.memory returns for a case's arguments."""
    from lessons import memory

    def model_state_bytes(n_params, precision, optimizer):
        parts = memory.training_memory(n_params, precision=precision, optimizer=optimizer)
        return parts.parameters, parts.gradients, parts.optimizer_states

    def zero_bytes_per_device(n_params, stage, n_devices):
        parts = memory.training_memory(
            n_params, precision="mixed", optimizer="adam", zero_stage=stage, n_devices=n_devices
        )
        return parts.parameters, parts.gradients, parts.optimizer_states

    def korthikanti_bytes(s, b, h, a):
        return float(memory.transformer_layer_activations(s, b, h, a))

    def accumulated_loss(loss_sums, token_counts):
        """accumulate_gradients on micro-batches whose summed losses are ``loss_sums`` and
        whose real tokens are ``token_counts``; a zero weight makes the model."""
        model = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(model.weight)
        micro_batches = []
        for i, count in enumerate(token_counts.tolist()):
            targets = torch.full((count + 2,), memory.IGNORE_INDEX)
            targets[:count] = 0
            micro_batches.append((torch.tensor([i]), targets))

        def loss_fn(model, batch):
            return loss_sums[batch[0].item()] + model.weight.sum()

        loss = memory.accumulate_gradients(model, micro_batches, loss_fn=loss_fn)
        return torch.tensor(loss, dtype=loss_sums.dtype)

    def token_weighted_loss(logits, targets):
        micro_batches = [(logits[i], targets[i]) for i in range(len(logits))]
        summed = sum(memory.summed_token_loss(lambda x: x, batch) for batch in micro_batches)
        return summed / sum(memory.real_tokens(batch) for batch in micro_batches)

    def checkpointed_block_forward(block, x):
        return memory.CheckpointedLayer(block.module)(x)

    return {
        "memory.model_state_bytes": model_state_bytes,
        "memory.zero_bytes_per_device": zero_bytes_per_device,
        "memory.korthikanti_bytes": korthikanti_bytes,
        "memory.accumulated_loss": accumulated_loss,
        "memory.token_weighted_loss": token_weighted_loss,
        "memory.checkpointed_block_forward": checkpointed_block_forward,
    }


MEMORY_EQUIVALENTS = _memory_equivalents()
TESTED_BELOW.update(MEMORY_EQUIVALENTS)


@pytest.mark.parametrize("exercise_id", sorted(MEMORY_EQUIVALENTS))
def test_memory_solution_equals_the_taught_module_on_every_case(exercise_id: str) -> None:
    exercise = exercises.get(exercise_id)
    for case in exercise.cases():
        expected = MEMORY_EQUIVALENTS[exercise_id](*case.args, **case.kwargs)
        got = exercise.solution(*case.args, **case.kwargs)
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6, msg=case.name)


def test_memory_checkpointed_block_gives_the_taught_layers_parameter_gradients() -> None:
    """Beyond the outputs: the parameters get the gradients CheckpointedLayer gives them."""
    from lessons.exercises.memory import checkpointed_block_forward
    from lessons.memory import CheckpointedLayer

    for case in exercises.get("memory.checkpointed_block_forward").cases():
        block, x = case.args
        gradients = []
        taught = CheckpointedLayer(block.module)
        for run in (lambda x, block=block: checkpointed_block_forward(block, x), taught):
            block.module.zero_grad(set_to_none=True)
            run(x).pow(2).sum().backward()
            gradients.append([p.grad.clone() for p in block.module.parameters()])
        torch.testing.assert_close(gradients[0], gradients[1], rtol=0, atol=0, msg=case.name)
