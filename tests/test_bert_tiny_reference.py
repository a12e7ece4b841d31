"""The pre-trained small BERT of chapter 5 (section 5), run by Hugging Face.

all-MiniLM-L6-v2 ships no masked-LM head, so the heads cannot be checked on MiniLM's real
weights. The small BERT's weights are real pre-trained weights with both heads: copied
into ``transformers.BertForPreTraining``, they must give the same masked-word predictions
and the same next-sentence scores as ours.
"""

from __future__ import annotations

import pytest
import torch

from lessons import bert
from lessons.core import data

transformers = pytest.importorskip("transformers")


#: One torch thread for every test here (the shared fixture of conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def _hugging_face_copy(model: bert.BertForPreTraining):
    """A ``transformers.BertForPreTraining`` holding ``model``'s weights, by the name tables
    of `lessons.bert` read backwards."""
    config = model.bert.bert_config
    reference = transformers.BertForPreTraining(
        transformers.BertConfig(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            max_position_embeddings=config.max_position_embeddings,
            type_vocab_size=config.type_vocab_size,
            layer_norm_eps=config.layer_norm_eps,
            hidden_act="gelu",
            attn_implementation="eager",
        )
    ).eval()
    ours = model.state_dict()
    names = {
        f"bert.{theirs}": f"bert.{mine}"
        for theirs, mine in bert.hf_names(config.num_hidden_layers, pooler=True).items()
    }
    names.update(bert.HF_MLM_NAMES)
    names.update(bert.HF_NSP_NAMES)
    state = {theirs: ours[mine] for theirs, mine in names.items()}
    state["cls.predictions.decoder.weight"] = ours["bert.embeddings.word_embeddings.weight"]
    state["cls.predictions.decoder.bias"] = ours["head.bias"]
    missing, unexpected = reference.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"bert.embeddings.position_ids"}, missing
    return reference


@pytest.fixture(scope="module")
def models():
    ours, tokenizer = bert.load_pretrained("tiny")
    return ours, _hugging_face_copy(ours), tokenizer


@pytest.fixture(scope="module")
def masked_batch(models):
    """Validation sentence pairs with 15% of their tokens masked by the 80/10/10 rule."""
    _, _, tokenizer = models
    articles = [a for a in data.wikipedia_articles("validation") if len(a.sentences) >= 2]
    pairs = bert.nsp_pairs([a.sentences for a in articles], seed=0)[:24]
    return bert.pretraining_batch(pairs, tokenizer, generator=torch.Generator().manual_seed(0))


def test_the_masked_word_predictions_agree_with_hugging_face(models, masked_batch) -> None:
    ours, theirs, _ = models
    inputs = {
        "input_ids": masked_batch.input_ids,
        "attention_mask": masked_batch.attention_mask,
        "token_type_ids": masked_batch.token_type_ids,
    }
    with torch.no_grad():
        mine = ours(**inputs)
        reference = theirs(**inputs)
    selected = masked_batch.mlm_labels != bert.IGNORE_INDEX
    assert int(selected.sum()) > 100
    mlm_mine, mlm_theirs = mine.mlm_logits[selected], reference.prediction_logits[selected]
    assert (mlm_mine - mlm_theirs).abs().max() < 1e-4
    assert torch.equal(mlm_mine.argmax(-1), mlm_theirs.argmax(-1))  # every top-1 word
    assert (mine.nsp_logits - reference.seq_relationship_logits).abs().max() < 1e-4
    assert torch.equal(mine.nsp_logits.argmax(-1), reference.seq_relationship_logits.argmax(-1))
