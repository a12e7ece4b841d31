"""The memory calculator of lessons.memory (chapter 7, section 1): the model states against
the ZeRO paper's Figure 1, per-part bytes written out by hand, the activation count of
Korthikanti et al. (2022) on worked examples, and that count beside what autograd
really saves in chapter 4's layers, explained to the byte."""

from __future__ import annotations

import pytest
import torch

from lessons.attention import causal_mask
from lessons.memory import (
    PRECISIONS,
    activation_terms,
    bytes_per_parameter,
    measured_layer_activations,
    training_memory,
    transformer_layer_activations,
)
from lessons.transformer import DecoderLayer, EncoderLayer

pytestmark = pytest.mark.usefixtures("one_thread")  # the layers below run torch

# --------------------------------------------------------------------------------------
# The model states
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("zero_stage", "gigabytes"), [(0, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)])
def test_zero_paper_figure_1(zero_stage, gigabytes):
    """Rajbhandari et al. (2020), Figure 1: 7.5B parameters, mixed-precision Adam
    (K = 12), 64 devices; gigabytes of 10⁹ bytes, rounded to one decimal as there."""
    memory = training_memory(
        7.5e9, precision="mixed", optimizer="adam", zero_stage=zero_stage, n_devices=64
    )
    assert round(memory.total / 1e9, 1) == gigabytes


def test_zero_paper_figure_1_unrounded():
    """The same four figures before rounding: 16Ψ, 4Ψ + 12Ψ/64, 2Ψ + 14Ψ/64, 16Ψ/64."""
    psi = 7.5e9
    totals = [
        training_memory(psi, precision="mixed", zero_stage=stage, n_devices=64).total
        for stage in range(4)
    ]
    assert totals == pytest.approx([120e9, 31.40625e9, 16.640625e9, 1.875e9], rel=1e-12)


def test_mixed_precision_adam_costs_16_bytes_per_parameter():
    assert bytes_per_parameter("mixed", "adam") == (2, 2, 12)
    memory = training_memory(1, precision="mixed", optimizer="adam")
    assert (memory.parameters, memory.gradients, memory.optimizer_states) == (2, 2, 12)
    assert memory.total == 16


# (weights, gradients, optimiser states) per parameter, by hand: fp32 keeps everything
# in 4 bytes; mixed keeps 2-byte weights and gradients and a 4-byte master copy among
# the states, plus 4 bytes per state; bf16 keeps everything in 2 bytes, with no master.
BY_HAND = {
    ("fp32", "sgd"): (4, 4, 0),
    ("fp32", "momentum"): (4, 4, 4),
    ("fp32", "adam"): (4, 4, 8),
    ("mixed", "sgd"): (2, 2, 4),
    ("mixed", "momentum"): (2, 2, 8),
    ("mixed", "adam"): (2, 2, 12),
    ("bf16", "sgd"): (2, 2, 0),
    ("bf16", "momentum"): (2, 2, 2),
    ("bf16", "adam"): (2, 2, 4),
}


@pytest.mark.parametrize(("precision", "optimizer"), list(BY_HAND))
def test_bytes_per_part(precision, optimizer):
    n = 1_000_000
    memory = training_memory(n, precision=precision, optimizer=optimizer)
    weights, gradients, states = BY_HAND[precision, optimizer]
    assert bytes_per_parameter(precision, optimizer) == (weights, gradients, states)
    assert memory.parameters == weights * n
    assert memory.gradients == gradients * n
    assert memory.optimizer_states == states * n
    assert memory.total == (weights + gradients + states) * n


def test_each_stage_partitions_one_more_part():
    """Stage 1 divides the states by the device count, stage 2 the gradients too,
    stage 3 the parameters too (fp32 Adam: 4 + 4 + 8 bytes; 1000 parameters, 8 devices)."""
    parts = [
        (m.parameters, m.gradients, m.optimizer_states)
        for m in (training_memory(1000, zero_stage=stage, n_devices=8) for stage in range(4))
    ]
    assert parts == [
        (4000, 4000, 8000),
        (4000, 4000, 1000),
        (4000, 500, 1000),
        (500, 500, 1000),
    ]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_one_device_makes_every_stage_stage_0(precision):
    baseline = training_memory(123_456, precision=precision)
    for stage in (1, 2, 3):
        memory = training_memory(123_456, precision=precision, zero_stage=stage, n_devices=1)
        assert memory.total == baseline.total
        assert memory.optimizer_states == baseline.optimizer_states


def test_table_lists_the_parts_in_gigabytes():
    table = training_memory(
        7.5e9, precision="mixed", optimizer="adam", zero_stage=1, n_devices=64
    ).table()
    lines = table.splitlines()
    assert "ZeRO stage 1 over 64 device(s)" in lines[0]
    assert lines[1].split() == ["parameters", "15.0"]
    assert lines[2].split() == ["gradients", "15.0"]
    assert lines[3].split() == ["optimizer", "states", "1.4"]
    assert lines[4].split() == ["total", "31.4"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"precision": "fp16"}, ValueError, "precision: expected one of 'fp32', 'mixed'"),
        ({"optimizer": "adagrad"}, ValueError, "optimizer: expected one of 'sgd'"),
        ({"zero_stage": 4}, ValueError, "zero_stage: expected one of 0, 1, 2, 3; got int 4"),
        ({"zero_stage": "1"}, TypeError, "zero_stage: expected one of 0, 1, 2, 3"),
        ({"n_devices": 0}, ValueError, "n_devices: expected an int >= 1, got 0"),
        ({"n_devices": 2.0}, TypeError, "n_devices: expected an int >= 1"),
    ],
)
def test_argument_errors_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(")):
        training_memory(1000, **kwargs)


@pytest.mark.parametrize("n_params", [-1, 0])
def test_parameter_count_must_be_positive(n_params):
    with pytest.raises(ValueError, match=f"n_params: expected a positive number, got {n_params}"):
        training_memory(n_params)


# --------------------------------------------------------------------------------------
# The activations: the formula
# --------------------------------------------------------------------------------------


def test_korthikanti_formula_on_gpt3_sizes():
    """A layer of GPT-3 175B (Brown et al., 2020, Table 2.1: context 2048, d_model 12288,
    96 heads), one sequence: s = 2048, h = 12288, a = 96. By hand:
    5as/h = 5 * 96 * 2048 / 12288 = 80, so sbh (34 + 80) = 2048 * 12288 * 114 =
    2,868,903,936 bytes, of which the attention scores' part 5as²b = 80 sbh = 2,013,265,920."""
    total = transformer_layer_activations(2048, 1, 12288, 96)
    assert total == 2_868_903_936
    assert total == 2048 * 12288 * (34 + 5 * 96 * 2048 // 12288)


def test_korthikanti_formula_small_example_by_hand():
    """s = 4, b = 2, h = 8, a = 2: sbh = 64, as²b = 64; 34 * 64 + 5 * 64 = 2496 bytes.
    In float32 with 1-byte masks: (16 * 4 + 2) * 64 + (2 * 4 + 1) * 64 = 4800; in 16 bits
    with 2-byte masks: (16 * 2 + 2 * 2) * 64 + (2 * 2 + 2) * 64 = 2688."""
    assert transformer_layer_activations(4, 2, 8, 2) == 2496
    assert transformer_layer_activations(4, 2, 8, 2, bytes_per_value=4) == 4800
    assert transformer_layer_activations(4, 2, 8, 2, bytes_per_value=2, mask_bytes=2) == 2688


def test_formula_terms_sum_to_equation_1():
    s, b, h, a = 128, 3, 64, 4
    terms = activation_terms(s, b, h, a, bytes_per_value=2)
    assert sum(term.formula for term in terms) == s * b * h * 34 + 5 * a * s * s * b


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seq": 0}, "seq: expected an int >= 1, got 0"),
        ({"heads": 3}, "hidden: expected a multiple of heads=3, got 8"),
        ({"bytes_per_value": 0}, "bytes_per_value: expected an int >= 1, got 0"),
    ],
)
def test_formula_argument_errors(kwargs, message):
    sizes = {"seq": 4, "batch": 2, "hidden": 8, "heads": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        transformer_layer_activations(**sizes)


# --------------------------------------------------------------------------------------
# The activations: measured in chapter 4's layers, explained term by term
# --------------------------------------------------------------------------------------


def _measure(layer_class, s, b, h, a, f, causal=False, **settings):
    torch.manual_seed(0)
    layer = layer_class(h, a, dim_feedforward=f, dropout=0.1, **settings).train()
    x = torch.randn(b, s, h, requires_grad=True)
    if not causal:
        return measured_layer_activations(layer, x)
    key = "mask" if layer_class is EncoderLayer else "self_mask"
    return measured_layer_activations(layer, x, **{key: causal_mask(s)})


def test_gpt_layer_in_float32_measured_to_the_byte():
    """A GPT-shaped layer (pre-norm, GeLU, 4h feed-forward, dropout 0.1) in float32 on a
    CPU; s = 12, b = 3, h = 40, a = 5: sbh = 1440, as²b = 2160, sb = 36, asb = 180.

    By hand, in float32 (4 bytes) with the CPU's 4-byte dropout masks:
    sbh terms: LayerNorm inputs 8, QKV input 4, Q and K 8, V 4, output projection's input
    4, its dropout mask 4, first linear map's input 4, GeLU input 16, its dropout mask
    16, second linear map's input 16, the last dropout mask 4, attention output before
    normalising 4: 92 sbh = 132,480.
    as²b terms: exp(scores - max) 4, bool dropout mask 1, dropout output 4: 9 as²b = 19,440.
    Small: two LayerNorms' mean and rstd, 16 sb = 576; row sums 4, their empty-row mask 1,
    row maxima 4: 9 asb = 1,620. Total 154,116 bytes.
    """
    measured = _measure(EncoderLayer, 12, 3, 40, 5, 160, norm_first=True, activation="gelu")
    assert measured == 154_116
    terms = activation_terms(12, 3, 40, 5)
    assert sum(term.layer for term in terms) == measured
    # the formula at 4 bytes per value and 1-byte masks: 66 sbh + 9 as²b
    formula = transformer_layer_activations(12, 3, 40, 5, bytes_per_value=4)
    assert formula == 66 * 1440 + 9 * 2160 == 114_480
    assert sum(term.formula for term in terms) == formula
    # and the paper's own fp16 count for the same sizes: 34 sbh + 5 as²b
    assert transformer_layer_activations(12, 3, 40, 5) == 34 * 1440 + 5 * 2160 == 59_760


@pytest.mark.parametrize(
    ("layer_class", "s", "b", "h", "a", "f", "causal", "settings"),
    [
        (EncoderLayer, 12, 3, 40, 5, 72, False, {"norm_first": True, "activation": "gelu"}),
        (EncoderLayer, 9, 2, 24, 3, 96, False, {"norm_first": False, "activation": "relu"}),
        (EncoderLayer, 10, 2, 32, 4, 128, True, {"norm_first": True, "activation": "gelu"}),
        (
            DecoderLayer,
            10,
            2,
            32,
            4,
            128,
            True,
            {"norm_first": True, "activation": "gelu", "cross_attention": False},
        ),
    ],
)
def test_terms_explain_the_measurement(layer_class, s, b, h, a, f, causal, settings):
    """Other sizes, norm placements, activations and the causal decoder-only layer of
    chapter 4's language model: the terms add up to the measurement exactly."""
    measured = _measure(layer_class, s, b, h, a, f, causal=causal, **settings)
    terms = activation_terms(s, b, h, a, ffn_hidden=f, causal=causal)
    assert sum(term.layer for term in terms) == measured
    assert sum(term.formula for term in terms) == transformer_layer_activations(
        s, b, h, a, bytes_per_value=4, ffn_hidden=f
    )


def test_terms_name_every_difference():
    """Every term where the layer and the formula differ says why; float32 doubles the
    formula's 2-byte terms and leaves its 1-byte masks alone."""
    s, b, h, a = 12, 3, 40, 5
    float32 = {t.name: t.formula for t in activation_terms(s, b, h, a)}
    fp16 = {t.name: t.formula for t in activation_terms(s, b, h, a, bytes_per_value=2)}
    for name, size in fp16.items():
        expected = size if "mask" in name else 2 * size
        assert float32[name] == expected, name
    for term in activation_terms(s, b, h, a):
        if term.layer != term.formula:
            assert term.why and term.why != "the same", term.name
    on_gpu = activation_terms(s, b, h, a, dropout_mask_bytes=1)
    masks = [t for t in on_gpu if t.name.startswith("dropout mask after attention")]
    assert masks[0].layer == masks[0].formula == s * b * h


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU, where nn.Dropout saves bool masks"
)
def test_terms_explain_the_measurement_on_cuda():
    """On a GPU ``nn.Dropout`` saves a 1-byte mask; every other term is as on a CPU."""
    torch.manual_seed(0)
    layer = EncoderLayer(40, 5, dim_feedforward=160, dropout=0.1, activation="gelu")
    layer = layer.cuda().train()
    x = torch.randn(3, 12, 40, device="cuda", requires_grad=True)
    terms = activation_terms(12, 3, 40, 5, dropout_mask_bytes=1)
    assert measured_layer_activations(layer, x) == sum(term.layer for term in terms)


def test_measurement_argument_errors():
    with pytest.raises(TypeError, match="layer: expected an nn.Module, got function"):
        measured_layer_activations(lambda x: x, torch.zeros(1, 2, 8))
    layer = EncoderLayer(8, 2, dim_feedforward=16)
    with pytest.raises((TypeError, ValueError), match=r"x: expected a floating-point tensor"):
        measured_layer_activations(layer, torch.zeros(2, 8))
