"""Tests of symvg.diagnose and ``symvg diagnose``: known decays are recovered, bad logs refused in one line."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import symvg.cli
from symvg import diagnose as dg
from symvg.views import diagnosis as dv
from symvg.logs import events, pytorch as torchlog
from symvg import logs
from symvg.symbolic.activations import get as get_activation
from symvg.errors import BackendUnavailableError, InvalidValueError, SymvgInputError

DATA = Path(__file__).parent / "data"
SIGMOID_CSV = DATA / "diagnose_sigmoid.csv"
ROOT = Path(__file__).resolve().parents[1]


def synthetic(factor: float, n_layers: int = 8, steps: int = 20, noise: float = 0.1, seed: int = 0,
              **extra) -> logs.GradientLog:
    """Norms = factor^(layers back from the output) × lognormal noise."""
    rng = np.random.default_rng(seed)
    recs = [logs.Record(s, k, float(factor ** (n_layers - 1 - k) * math.exp(noise * rng.standard_normal())), **extra)
            for s in range(steps) for k in range(n_layers)]
    return logs.GradientLog.from_records(recs, "synthetic")


def cli(*args: str):
    return CliRunner().invoke(symvg.cli.cli, list(args))


def assert_one_line_error(result, status: int, fragment: str) -> None:
    assert result.exit_code == status, (result.output, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symvg: error:"), result.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------- fit and classification


@pytest.mark.parametrize("factor", [0.2, 0.5])
def test_known_decay_is_recovered_within_its_error(factor):
    d = dg.diagnose(synthetic(factor))
    assert abs(d.fit.factor - factor) < 3 * d.fit.factor_se + 1e-12
    assert d.fit.factor_se < 0.1 * factor  # the noise averages out over 20 steps
    assert d.fit.layers_used == 8
    assert d.status == "vanishing"
    assert d.layers[0].status == "vanishing" and d.layers[-1].status == "healthy"
    assert d.first_last_ratio == pytest.approx(factor ** 7, rel=0.2)


def test_growth_is_exploding_with_clipping_remedy():
    d = dg.diagnose(synthetic(4.0), "tanh")
    assert d.fit.factor == pytest.approx(4.0, rel=0.05)
    assert d.status == "exploding" and "Exploding" in d.verdict
    keys = [r.key for r in d.remedies]
    assert "clipping" in keys and "relu" not in keys


def test_flat_is_healthy_without_remedies():
    d = dg.diagnose(synthetic(1.0), "relu")
    assert d.status == "healthy" and d.remedies == ()
    assert d.fit.factor == pytest.approx(1.0, abs=0.03)
    assert all(l.status == "healthy" for l in d.layers)
    assert d.verdict.startswith("Healthy")


def test_healthy_but_decaying_run_projects_the_depth_at_which_it_would_vanish():
    d = dg.diagnose(synthetic(0.7, n_layers=5, noise=0.01))
    assert d.status == "healthy"  # 0.7^4 = 0.24 is within two orders of magnitude
    # first/last of N layers is 0.7^(N-1): 0.7^12 = 0.0138 at 13 layers, 0.7^13 = 0.0097 at 14. N - 1 = ln(0.01)/ln(0.7)
    # = 12.9 steps back, so about 14 layers deep (it said 13, the step count, when a 13-layer network stays above)
    assert "about 14 layers deep" in d.verdict


def test_thresholds_are_arguments_and_are_checked():
    log = synthetic(0.5, n_layers=5)  # first/last = 1/16
    assert dg.diagnose(log).status == "healthy"
    assert dg.diagnose(log, vanishing_below=0.1).status == "vanishing"
    with pytest.raises(InvalidValueError, match="vanishing_below"):
        dg.diagnose(log, vanishing_below=2.0)


def test_mixed_when_some_layers_vanish_and_others_explode():
    recs = [logs.Record(0, k, v) for k, v in enumerate([1e-4, 1e4, 1.0])]
    d = dg.diagnose(logs.GradientLog.from_records(recs))
    assert d.status == "mixed"
    assert {"clipping", "residual"} <= {r.key for r in d.remedies}


def test_window_uses_only_the_last_steps():
    # flat for 10 steps, then the last 5 vanish: the mean over all steps hides it, the window does not
    recs = [logs.Record(s, k, 1.0 if s < 10 else 0.1 ** (3 - k)) for s in range(15) for k in range(4)]
    log = logs.GradientLog.from_records(recs)
    assert dg.diagnose(log).status == "healthy"
    d = dg.diagnose(log, window=5)
    assert d.status == "vanishing" and d.steps_used == (10, 11, 12, 13, 14)


def test_zero_gradient_layer_is_vanishing_and_left_out_of_the_fit():
    recs = [logs.Record(0, k, v) for k, v in enumerate([0.0, 0.25, 0.5, 1.0])]
    d = dg.diagnose(logs.GradientLog.from_records(recs))
    assert d.layers[0].status == "vanishing" and d.fit.layers_used == 3
    assert d.fit.factor == pytest.approx(0.5)


def test_two_layers_give_a_factor_without_an_error():
    d = dg.diagnose(logs.GradientLog.from_records([logs.Record(0, 0, 0.5), logs.Record(0, 1, 1.0)]))
    assert d.fit.factor == pytest.approx(0.5) and d.fit.factor_se is None
    assert "±" not in str(d.fit)


# ----------------------------------------------------------------------------- the bound


def test_bound_with_weight_norms_matches_the_issue_wording():
    d = dg.diagnose(synthetic(0.21, noise=0.0, weight_norm=0.96, activation="sigmoid"))
    b = d.bound
    assert b.gamma == get_activation("sigmoid").gamma and str(b.gamma) == "1/4"
    assert b.bound == pytest.approx(0.24) and b.consistent is True
    assert b.norm == "frobenius"
    assert b.text == ("measured factor 0.21 per layer (decay); sigmoid bound 1/4·‖W‖ predicts ≤ 0.24 "
                      "(‖W‖ = 0.96, geometric mean of the Frobenius norms, ≥ the spectral norms)")


def test_bound_without_weight_norms_states_the_implied_weight():
    d = dg.diagnose(synthetic(0.5, noise=0.0), "sigmoid")
    assert d.bound.bound is None and d.bound.consistent is None
    assert d.bound.implied_weight_norm == pytest.approx(2.0)
    assert d.bound.text.endswith("predicts ≤ 0.25·‖W‖; consistent if ‖W‖ ≥ 2")


def test_measurement_above_the_bound_is_flagged():
    d = dg.diagnose(synthetic(0.5, noise=0.0, weight_norm=1.0), "sigmoid")  # bound 0.25 < 0.5
    assert d.bound.consistent is False and "above the bound" in d.bound.text


def test_per_layer_activations_mix_their_gammas():
    acts = ["relu", "sigmoid", "relu"]  # one per layer the gradient passes; output layer left out
    d = dg.diagnose(synthetic(0.5, n_layers=4, noise=0.0), acts)
    assert d.bound.gamma is None and d.bound.gamma_value == pytest.approx(0.25 ** (1 / 3))
    assert "mixed (relu, sigmoid)" in d.bound.text
    with pytest.raises(InvalidValueError, match="2 names for 4 layers"):
        dg.diagnose(synthetic(0.5, n_layers=4), ["relu", "relu"])


def test_no_activation_means_no_bound_but_the_relu_remedy_is_still_offered():
    d = dg.diagnose(synthetic(0.2))
    assert d.bound is None and "relu" in [r.key for r in d.remedies]
    assert "give --activation" in dv.render_text(d)


def test_relu_network_that_vanishes_is_not_told_to_use_relu():
    d = dg.diagnose(synthetic(0.2), "relu")
    keys = [r.key for r in d.remedies]
    assert "relu" not in keys and {"residual", "normalisation", "init"} <= set(keys)


def test_many_near_zero_weights_add_the_dead_units_remedy():
    d = dg.diagnose(synthetic(0.2, near_zero_fraction=0.8), "relu")
    dead = [r for r in d.remedies if r.key == "dead_units"]
    assert dead and "80%" in dead[0].text


# ----------------------------------------------------------------------------- readers


def test_hand_made_csv():
    log = logs.read_csv(SIGMOID_CSV)
    assert [l.name for l in log.layers] == ["fc1", "fc2", "fc3", "fc4", "out"]
    assert log.layers[0].activation == "sigmoid" and log.layers[-1].activation is None
    d = dg.diagnose(log)
    assert d.status == "vanishing" and d.fit.factor == pytest.approx(0.2, abs=0.01)
    assert d.bound.consistent and d.bound.bound == pytest.approx(0.25 * 0.995, rel=0.01)
    assert d.layers[0].near_zero_fraction == pytest.approx(0.004)


def test_binary_and_bom_files(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(b"step,layer,grad_norm\n0,a,\xff\xfe\n")
    assert_one_line_error(cli("diagnose", str(p)), 2, "not UTF-8 text (byte 25)")
    p.write_bytes(b"step,layer,grad_norm\n0,a,1\x00\n0,b,1\n")
    assert_one_line_error(cli("diagnose", str(p)), 2, "line 2")
    p.write_bytes("\ufeffstep,layer,grad_norm\n0,a,0.5\n0,b,1\n".encode())  # Excel's byte-order mark
    assert dg.diagnose(logs.read_csv(p)).first_last_ratio == 0.5


def test_integer_layers_sort_numerically_and_names_follow_order_or_appearance(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("step,layer,grad_norm\n" + "".join(f"0,{k},{0.5 ** (10 - k)}\n" for k in (10, 2, 9, 0, 1)))
    assert [l.name for l in logs.read_csv(p).layers] == ["0", "1", "2", "9", "10"]
    p.write_text("step,layer,grad_norm,order\n0,out,1,2\n0,mid,0.5,1\n0,in,0.25,0\n")
    assert [l.name for l in logs.read_csv(p).layers] == ["in", "mid", "out"]
    p.write_text("step,layer,grad_norm\n0,out,1\n0,mid,0.5\n")
    assert [l.name for l in logs.read_csv(p).layers] == ["out", "mid"]


def test_json_reader_agrees_with_csv(tmp_path):
    log = logs.read_csv(SIGMOID_CSV)
    data = {"steps": list(log.steps), "layers": [
        {"name": l.name, "grad_norm": list(l.grad_norm), "weight_norm": list(l.weight_norm),
         "near_zero_fraction": list(l.near_zero_fraction), **({"activation": l.activation} if l.activation else {})}
        for l in log.layers]}
    p = tmp_path / "g.json"
    p.write_text(json.dumps(data))
    a, b = dg.diagnose(logs.read_json(p)), dg.diagnose(log)
    assert a.fit == b.fit and a.layers == b.layers and a.bound.text == b.bound.text


def test_write_csv_round_trips(tmp_path):
    recs = [logs.Record(s, f"l{k}", 0.3 ** k, 1.5, 0.01, "tanh") for s in range(2) for k in range(3)]
    logs.write_csv(recs, tmp_path / "r.csv")
    log = logs.read_log(tmp_path / "r.csv")
    assert log == logs.GradientLog.from_records(recs, str(tmp_path / "r.csv"))


BAD_CSV = [
    ("", "empty file"),
    ("step,layer,grad_norm\n", "no data rows"),
    ("step,layer\n0,a\n", "missing column(s) grad_norm"),
    ("step,layer,grad_norm\n0,a,1\n0,b,big\n", "line 3, column grad_norm: 'big' is not a number"),
    ("step,layer,grad_norm\n0,a,nan\n0,b,1\n", "layer w1 (a) logged grad_norm nan at step 0, the first "
     "non-finite value; no finite steps before it"),
    ("step,layer,grad_norm\n0,a,1\n0,b,inf\n", "layer w2 (b) logged grad_norm inf at step 0"),
    ("step,layer,grad_norm\n0,a,1e999\n0,b,1\n", "line 2, column grad_norm: '1e999' is beyond the float range"),
    ("step,layer,grad_norm\n0,a," + "1" * 5000 + "\n0,b,1\n", "(5002 characters) is longer than 100 characters"),
    ("step,layer,grad_norm\n0," + "1" * 5000 + ",1\n0,b,1\n", "column layer: '1111"),
    ("step,layer,grad_norm\n" + "1" * 5000 + ",a,1\n0,b,1\n", "is not an integer (at most 18 digits)"),
    ("step,layer,grad_norm\n0,a,-0.5\n0,b,1\n", "line 2, column grad_norm: -0.5 is negative"),
    ("step,layer,grad_norm\n0.5,a,1\n", "line 2, column step: '0.5' is not an integer"),
    ("step,layer,grad_norm\n0,a,1\n0,a,2\n", "duplicate record for step 0, layer 'a' (first at line 2)"),
    ("step,layer,grad_norm\n0,a,1,3\n", "line 2: expected 3 fields, got 4"),
    ("step,layer,grad_norm,near_zero_fraction\n0,a,1,1.5\n", "1.5 is not in [0, 1]; a fraction lies in [0, 1]"),
    ("step,layer,grad_norm,activation\n0,a,1,sigmod\n0,b,1,\n", "line 2, column activation: unknown activation 'sigmod'"),
    ("step,layer,grad_norm,activation\n0,a,1,relu\n1,a,1,tanh\n", "layer 'a' has activations relu, tanh"),
    ("step,layer,grad_norm\n0,a,1\n", "1 layer(s); need gradient norms for at least 2 layers"),
    ("step,layer,grad_norm\n0,a,1\n0,b,0\n", "the last layer 'b' has mean gradient norm 0"),
]


@pytest.mark.parametrize("text,fragment", BAD_CSV)
def test_malformed_csv_is_refused_in_one_line(tmp_path, text, fragment):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(SymvgInputError) as e:
        dg.diagnose(logs.read_csv(p))
    assert fragment in str(e.value)
    assert_one_line_error(cli("diagnose", str(p)), 2, fragment)


BAD_JSON = [
    ("", "empty file"),
    ("{not json", "not valid JSON (line 1"),
    ('{"steps": [0]}', "expected a JSON object with a 'layers' list"),
    ('{"layers": [], "extra": 1}', "unknown key(s) extra"),
    ('{"layers": [{"grad_norm": [1]}]}', "layers[0]: missing name"),
    ('{"layers": [{"name": "a", "grad_norm": [NaN]}, {"name": "b", "grad_norm": [1]}]}',
     "layer w1 (a) logged grad_norm nan at step 0"),
    ('{"layers": [{"name": "a", "grad_norm": ["1"]}, {"name": "b", "grad_norm": [1]}]}',
     "layers[0].grad_norm[0]: '1' is not a number"),
    ('{"layers": [{"name": "a", "grad_norm": [1], "name": "b"}]}', "duplicate key 'name' in one object"),
    ('{"layers": [{"name": {"x": 1}, "grad_norm": [1]}, {"name": "b", "grad_norm": [1]}]}',
     "layers[0].name: {'x': 1} is not a layer name"),
    ('{"layers": [{"name": "a", "grad_norm": [' + "1" * 5000 + ']}]}', "a number of 5000 characters is beyond"),
    ('{"layers": [{"name": "a", "grad_norm": [1e999]}]}', "1e999 is beyond the float range"),
    ("[" * 100000 + "]" * 100000, "nested too deeply"),
    ('{"layers": [{"name": "a", "grad_norm": [-1]}, {"name": "b", "grad_norm": [1]}]}', "-1 is negative"),
    ('{"steps": [0, 1], "layers": [{"name": "a", "grad_norm": [1]}]}', "layers[0].grad_norm: expected a list of 2"),
    ('{"layers": [{"name": "a", "grad_norm": [1], "activation": "nope"}, {"name": "b", "grad_norm": [1]}]}',
     "unknown activation 'nope'"),
]


@pytest.mark.parametrize("text,fragment", BAD_JSON)
def test_malformed_json_is_refused_in_one_line(tmp_path, text, fragment):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(SymvgInputError) as e:
        dg.diagnose(logs.read_json(p))
    assert fragment in str(e.value)
    assert_one_line_error(cli("diagnose", str(p)), 2, fragment)


# ----------------------------------------------------------------------------- the command line


def test_every_format_on_the_hand_made_csv(tmp_path):
    text = cli("diagnose", str(SIGMOID_CSV))
    assert text.exit_code == 0 and text.stdout.count("\n") > 10
    assert "Vanishing gradients" in text.stdout and "fc1" in text.stdout
    assert "sigmoid bound 1/4·‖W‖ predicts ≤ 0.25" in text.stdout
    md = cli("diagnose", str(SIGMOID_CSV), "--format", "markdown")
    assert md.exit_code == 0 and md.stdout.startswith("## Gradient diagnosis")
    assert "| k | layer | activation | mean \\|g\\| |" in md.stdout and "| w1 | fc1 |" in md.stdout and "### Remedies" in md.stdout
    js = cli("diagnose", str(SIGMOID_CSV), "--format", "json")
    data = json.loads(js.stdout)
    assert data["status"] == "vanishing" and data["bound"]["gamma"] == "1/4"
    assert [l["name"] for l in data["layers"]] == ["fc1", "fc2", "fc3", "fc4", "out"]
    assert data == dg.diagnose(logs.read_csv(SIGMOID_CSV)).as_dict() | {"source": str(SIGMOID_CSV)}
    out = tmp_path / "report.md"
    r = cli("diagnose", str(SIGMOID_CSV), "--format", "markdown", "--output", str(out))
    assert r.exit_code == 0 and r.stdout == "" and out.read_text() == md.stdout


def test_activation_option_overrides_the_log_and_window_narrows():
    r = cli("diagnose", str(SIGMOID_CSV), "--activation", "tanh", "--window", "1", "--format", "json")
    data = json.loads(r.stdout)
    assert data["bound"]["activations"] == ["tanh"] and data["bound"]["gamma"] == "1"
    assert data["steps_used"] == {"count": 1, "first": 2, "last": 2}
    assert_one_line_error(cli("diagnose", str(SIGMOID_CSV), "-a", "sigmod"), 2, "unknown activation 'sigmod'")
    assert_one_line_error(cli("diagnose", str(SIGMOID_CSV), "--window", "0"), 2, "--window")


def test_cli_refuses_missing_and_unknown_logs(tmp_path):
    assert_one_line_error(cli("diagnose", str(tmp_path / "nope.csv")), 2, "does not exist")
    (tmp_path / "log.txt").write_text("x")
    assert_one_line_error(cli("diagnose", str(tmp_path / "log.txt")), 2, "unknown kind '.txt'")
    assert_one_line_error(cli("diagnose", str(SIGMOID_CSV), "--plot", str(tmp_path / "p.gif")), 2,
                          "unknown image kind 'gif'")
    assert_one_line_error(cli("diagnose", str(SIGMOID_CSV), "-o", str(tmp_path / "no" / "r.txt")), 2,
                          "does not exist")


def test_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "g.png"
    r = cli("diagnose", str(SIGMOID_CSV), "--plot", str(png))
    assert r.exit_code == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]  # no temp file left behind


def test_missing_matplotlib_is_a_runtime_error_naming_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(BackendUnavailableError, match="pip install matplotlib"):
        dv.plot(dg.diagnose(logs.read_csv(SIGMOID_CSV)), tmp_path / "g.png")


def test_event_directories_need_no_tensorboard_and_an_empty_one_is_input_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(InvalidValueError, match="no TensorBoard event files"):
        logs.read_log(tmp_path)
    assert_one_line_error(cli("diagnose", str(tmp_path)), 2, "no TensorBoard event files")


# ----------------------------------------------------------------------------- TensorBoard and PyTorch


def test_tensorboard_tags_are_recognised():
    assert events.match_tag("grad_2.0_norm/layer1.weight") == ("grad_norm", "layer1.weight")
    assert events.match_tag("grad_inf_norm/layer1.weight") == ("grad_norm", "layer1.weight")
    assert events.match_tag("grad_2.0_norm_total") is None
    assert events.match_tag("grad_2.0_norm/layer1.weight_epoch") is None
    assert events.match_tag("weight_norm/fc") == ("weight_norm", "fc")
    assert events.match_tag("loss/train") is None


@pytest.mark.slow  # the real SummaryWriter against our reader; importing torch.utils.tensorboard takes ~10 s
def test_tensorboard_directory(tmp_path):
    pytest.importorskip("tensorboard")
    SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter
    w = SummaryWriter(log_dir=str(tmp_path))
    names = [f"layer{k}" for k in (1, 2, 10, 3)]  # first-appearance order, not alphabetical
    for step in range(4):
        w.add_scalar("train_loss", 1.0 / (step + 1), step)
        w.add_scalar("grad_2.0_norm_total", 5.0, step)
        for k, name in enumerate(names):
            w.add_scalar(f"grad_2.0_norm/{name}.weight", 0.1 ** (3 - k), step)
            w.add_scalar(f"grad_2.0_norm/{name}.bias", 1.0, step)
            w.add_scalar(f"weight_norm/{name}.weight", 2.0, step)
    w.close()
    log = logs.read_log(tmp_path)
    assert [l.name for l in log.layers] == [f"{n}.weight" for n in names]
    assert log.steps == (0, 1, 2, 3)
    assert all(l.bias_grad_norm == (1.0,) * 4 for l in log.layers)  # the biases are kept, as δ_k
    assert any("bias gradients of 4 layer(s)" in n for n in log.notes)
    d = dg.diagnose(log, "sigmoid")
    assert d.status == "vanishing" and d.fit.factor == pytest.approx(0.1, rel=1e-4)
    assert d.bound.bound == pytest.approx(0.5, rel=1e-6)
    r = cli("diagnose", str(tmp_path), "-a", "sigmoid", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "vanishing"
    w = SummaryWriter(log_dir=str(tmp_path / "hist"))  # add_histogram of each gradient: √(sum of squares)
    for step in range(2):
        for k, name in enumerate(names):
            w.add_histogram(f"{name}.weight/grad", np.full(9, 0.1 ** (3 - k) / 3), step)  # norm 0.1^(3-k)
    w.close()
    hist = logs.read_log(tmp_path / "hist")
    assert [l.grad_norm[0] for l in hist.layers] == pytest.approx([0.1 ** (3 - k) for k in range(4)], rel=1e-12)
    empty = tmp_path / "other"
    empty.mkdir()
    w = SummaryWriter(log_dir=str(empty))
    w.add_scalar("loss", 1.0, 0)
    w.close()
    with pytest.raises(InvalidValueError, match=r"no per-layer gradient-norm scalars \(tags seen: loss\)"):
        logs.read_log(empty)


def test_collect_torch_reads_weight_gradients_in_module_order():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.LayerNorm(8),
                                torch.nn.Linear(8, 1))
    x, y = torch.randn(16, 4), torch.randn(16, 1)
    recs = torchlog.collect_torch(model, torch.nn.MSELoss(), (x, y), step=7, activation=["tanh", None])
    assert [r.layer for r in recs] == ["0.weight", "3.weight"]  # LayerNorm's 1-D scale is not a layer weight
    assert all(r.step == 7 for r in recs) and recs[0].activation == "tanh" and recs[1].activation is None
    assert recs[1].grad_norm == pytest.approx(float(model[3].weight.grad.norm()))
    assert recs[0].weight_norm == pytest.approx(float(model[0].weight.detach().norm()))
    w = model[0].weight.detach().double().numpy()
    assert recs[0].spectral_norm == pytest.approx(np.linalg.svd(w, compute_uv=False)[0], rel=1e-12)
    assert recs[0].sigma_w2 == pytest.approx(4 * np.var(w), rel=1e-12)  # fan_in = 4
    assert recs[0].sigma_b2 == pytest.approx(np.var(model[0].bias.detach().double().numpy()), rel=1e-12)
    assert recs[1].bias_grad_norm == pytest.approx(float(model[3].bias.grad.norm()))
    assert model[0].weight.grad is not None  # left for the optimiser
    with pytest.raises(InvalidValueError, match="3 names for 2 weight layers"):
        torchlog.collect_torch(model, torch.nn.MSELoss(), (x, y), activation=["tanh"] * 3)


@pytest.mark.slow  # four real PyTorch training runs (~20 s on 2 cores): the issue's cases, end to end
def test_example_runs_vanish_heal_vanish_uniformly_and_diverge(tmp_path):
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("diagnose_mlp", ROOT / "examples" / "diagnose_mlp.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    runs = example.main(tmp_path)
    sig, relu, small, big = (runs[k] for k in ("sigmoid", "relu", "tanh_small", "tanh_big"))
    assert sig.status == "vanishing" and relu.status == "healthy"
    assert sig.fit.factor < 0.25 and sig.first_last_ratio < 1e-5
    assert sig.bound.consistent is True  # the measured decay respects 1/4·‖W‖₂
    assert 0.5 < relu.fit.factor < 2 and relu.remedies == ()
    assert "relu" in [r.key for r in sig.remedies]
    # init std 0.01, width 32: each layer multiplies δ by about 0.01·√32·tanh'(0) = 0.057 (√χ1)
    assert small.status == "vanishing" and "uniformly" in small.verdict and 0.3 < small.first_last_ratio < 3
    assert small.bias_fit.factor == pytest.approx(small.mean_field.factor, rel=0.2)
    assert small.mean_field.factor == pytest.approx(0.01 * 32 ** 0.5, rel=0.1)
    assert big.divergence is not None and big.status == "exploding" and big.verdict.startswith("Diverged")
    assert all((tmp_path / f"{name}.csv").exists() for name in runs)


# ----------------------------------------------------------------------------- issue 14: absolute scale


def flat_log(norm: float, n_layers: int = 5, steps: int = 3, **extra) -> logs.GradientLog:
    """Every layer at the same gradient norm: nothing to see layer against layer."""
    return logs.GradientLog.from_records(logs.Record(s, f"fc{k}", norm, **extra)
                                       for s in range(steps) for k in range(1, n_layers + 1))


def test_uniform_vanishing_is_not_healthy():
    # tanh, init std 0.01, width 64: |W|_F ≈ 0.01·64 = 0.64; every layer's gradient 2e-10
    d = dg.diagnose(flat_log(2e-10, weight_norm=0.64), "tanh")
    assert d.status == "vanishing" and all(l.status == "vanishing" for l in d.layers)
    assert "uniformly" in d.verdict and "|g|/|w|" in d.scale.evidence
    assert d.layers[0].log10_update == pytest.approx(math.log10(2e-10 / 0.64))  # lr = 1, the largest allowed
    assert "relu" in [r.key for r in d.remedies]  # tanh's proved floor is 0: it saturates


def test_uniform_explosion_is_not_healthy():
    d = dg.diagnose(flat_log(7e12, weight_norm=192.0))
    assert d.status == "exploding" and "uniformly" in d.verdict and "Exploding" in d.verdict
    assert "clipping" in [r.key for r in d.remedies]


def test_the_learning_rate_decides_when_given():
    log = flat_log(1e-3, weight_norm=1.0)
    assert dg.diagnose(log).status == "healthy"  # |g|/|w| = 1e-3: fine for some lr in 1e-5…1
    d = dg.diagnose(log, lr=1e-5)  # one step moves the weights by 1e-8 of their size
    assert d.status == "vanishing" and "lr = 1e-05" in d.scale.evidence
    assert d.layers[0].log10_update == pytest.approx(-8.0)
    assert dg.diagnose(flat_log(10.0, weight_norm=1.0), lr=0.5).status == "exploding"  # ratio 5 > 1
    with pytest.raises(InvalidValueError, match="lr must be"):
        dg.diagnose(log, lr=0.0)


def test_raw_norms_judge_the_scale_without_weight_norms_and_say_so():
    d = dg.diagnose(flat_log(2e-10))
    assert d.status == "vanishing" and d.scale.evidence.startswith("raw |g|")
    assert dg.diagnose(flat_log(1e-4)).status == "healthy"
    assert dg.diagnose(flat_log(1e9)).status == "exploding"  # even lr = 1e-5 moves weights by 1e4


def test_bias_gradients_show_the_decay_that_weight_gradients_hide():
    # δ_k halves per layer back while |h_(k-1)| doubles: weight gradients |δ_k||h_(k-1)| are flat
    recs = [logs.Record(0, k, 1.0, bias_grad_norm=0.5 ** (6 - k)) for k in range(1, 7)]
    d = dg.diagnose(logs.GradientLog.from_records(recs))
    assert d.fit.factor == pytest.approx(1.0)
    assert d.bias_fit.factor == pytest.approx(0.5) and d.bias_fit.layers_used == 6
    assert "bias gradients (δ_k itself): 0.5" in dv.render_text(d)
    assert d.layers[0].bias_grad_norm == pytest.approx(0.5 ** 5)


# ----------------------------------------------------------------------------- issue 14: divergence


def diverging_log(blow_up: int = 12) -> logs.GradientLog:
    """Factor 3 per layer back (exploding); layer w2 logs inf at ``blow_up``, every layer nan after."""
    recs = []
    for s in range(20):
        for k in range(1, 5):
            g = 3.0 ** (4 - k)
            if s == blow_up and k == 2:
                g = math.inf
            elif s > blow_up:
                g = math.nan
            recs.append(logs.Record(s, f"fc{k}", g))
    return logs.GradientLog.from_records(recs, "diverging")


def test_a_log_reaching_nan_is_diagnosed_up_to_the_divergence():
    d = dg.diagnose(diverging_log())
    assert d.status == "exploding" and d.divergence.step == 12
    assert d.divergence.layers == ("w2 (fc2)",) and d.divergence.value == "inf"
    assert d.steps_used == tuple(range(12))
    # before the inf, first/last = 3^3 = 27 lies within the default 0.01…100×, and 1…27 within the absolute
    # range: those steps are judged healthy by the thresholds (they were said "Exploding ... above the range")
    assert d.verdict.startswith("Diverged (exploding gradients): layer w2 (fc2) logged grad_norm inf at step 12, the first non-finite value. Before it, Healthy")
    assert "first/last = 27; factor 3" in d.verdict
    assert d.fit.factor == pytest.approx(3.0)
    assert dg.diagnose(diverging_log(), window=3).steps_used == (9, 10, 11)  # the steps before the blow-up
    assert d.remedies[0].key == "clipping"


def test_divergence_through_the_command_line(tmp_path):
    p = tmp_path / "div.csv"
    logs.write_csv([logs.Record(s, l.name, g) for l in diverging_log().layers for s, g in zip(l.steps, l.grad_norm)], p)
    r = cli("diagnose", str(p), "--window", "2", "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["divergence"]["step"] == 12 and data["steps_used"] == {"count": 2, "first": 10, "last": 11}
    assert data["status"] == "exploding"


def test_extreme_finite_norms_are_carried_in_log10(recwarn):
    recs = [logs.Record(s, k, v) for s in range(2) for k, v in enumerate([1.7e308, 1e-300, 1.0], 1)]
    d = dg.diagnose(logs.GradientLog.from_records(recs))
    assert d.layers[0].log10_relative == pytest.approx(math.log10(1.7e308))
    assert d.log10_first_last == pytest.approx(308.2304, abs=1e-4)
    text = dv.render_text(d)
    assert "inf" not in text and "nan" not in text and "1.7e+308" in text
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    huge_w = dg.diagnose(synthetic(1.0, n_layers=3, steps=2, weight_norm=1.7e308, spectral_norm=1.7e308), "leaky_relu:2")
    assert huge_w.bound.bound == math.inf and "3.4e+308" in huge_w.bound.text  # γ = 2: 2·1.7e308
    js = json.loads(cli("diagnose", *_csv(recs, "big")).stdout)
    assert js["layers"][0]["log10_relative_to_last"] == pytest.approx(308.2304, abs=1e-4)


def _csv(recs, name: str) -> list[str]:
    import tempfile

    p = Path(tempfile.mkdtemp()) / f"{name}.csv"
    logs.write_csv(recs, p)
    return [str(p), "--format", "json"]


def test_layers_are_numbered_from_one():
    d = dg.diagnose(flat_log(1.0, n_layers=3))
    assert [l.index for l in d.layers] == [1, 2, 3]
    assert dv.render_text(d).count("\nw1 ") == 1
    with pytest.raises(SymvgInputError, match="activation for layer w2"):
        dg.diagnose(flat_log(1.0, n_layers=3), ["relu", "sigmod", None])


# ----------------------------------------------------------------------------- issue 14: bound and mean field


def test_spectral_norms_replace_frobenius_in_the_bound():
    d = dg.diagnose(synthetic(0.2, n_layers=5, noise=0.0, weight_norm=8.0, spectral_norm=1.0), "sigmoid")
    assert d.bound.norm == "spectral" and d.bound.bound == pytest.approx(0.25)  # γ·‖W‖₂ = 1/4·1
    assert d.bound.consistent and "spectral norms)" in d.bound.text
    f = dg.diagnose(synthetic(0.2, n_layers=5, noise=0.0, weight_norm=8.0), "sigmoid")
    assert f.bound.norm == "frobenius" and f.bound.bound == pytest.approx(2.0)


def test_growth_is_called_growth():
    d = dg.diagnose(synthetic(2.0, n_layers=4, noise=0.0), "relu")
    assert "measured factor 2 per layer (growth)" in d.bound.text and "decay" not in d.bound.text


@pytest.mark.parametrize("sigma_w2", [1.0, 2.0, 3.0])
def test_mean_field_chi1_from_measured_variances(sigma_w2):
    # ReLU: χ1 = σw²·E[φ'(z)²] = σw²/2 for any q* (half the units pass): the norm factor is √(σw²/2)
    d = dg.diagnose(synthetic(1.0, n_layers=4, noise=0.0, sigma_w2=sigma_w2, sigma_b2=0.0), "relu")
    expected = math.sqrt(sigma_w2 / 2)
    assert d.mean_field.factor == pytest.approx(expected, rel=1e-12)
    assert [l.sqrt_chi1 for l in d.layers][:-1] == pytest.approx([expected] * 3)
    assert "√χ1" in dv.render_text(d)


# ----------------------------------------------------------------------------- issue 14: foreign layouts


def test_keras_style_columns_are_mapped_and_extra_columns_noted(tmp_path):
    p = tmp_path / "k.csv"
    p.write_text("epoch,layer_name,grad_norm,lr\n" + "".join(f"{e},dense_{k},{0.1 ** (2 - k)},0.01\n"
                                                           for e in range(2) for k in range(3)))
    log = logs.read_log(p)
    assert [l.name for l in log.layers] == ["dense_0", "dense_1", "dense_2"] and log.steps == (0, 1)
    assert log.notes == ("ignored column(s) 'lr' (not part of the schema)",)
    d = dg.diagnose(log)
    assert d.fit.factor == pytest.approx(0.1) and "note: ignored column(s) 'lr'" in dv.render_text(d)


def test_columns_option_maps_any_names(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("it,who,size\n0,a,0.25\n0,b,0.5\n0,c,1\n")
    assert_one_line_error(cli("diagnose", str(p)), 2, "--columns step=NAME")
    r = cli("diagnose", str(p), "--columns", "step=it,layer=who,grad_norm=size", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["fit"]["factor"] == pytest.approx(0.5)
    assert_one_line_error(cli("diagnose", str(p), "--columns", "stp=it"), 2, "columns: stp='it'")


def test_wide_csv_one_column_per_layer(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text("step,dense_0,dense_1,dense_2,loss,lr\n0,0.01,0.1,1,2.3,0.1\n1,0.01,0.1,1,2.2,0.1\n")
    log = logs.read_log(p)
    assert [l.name for l in log.layers] == ["dense_0", "dense_1", "dense_2"]
    assert "ignored column(s) 'loss', 'lr' (not per-layer)" in log.notes
    assert dg.diagnose(log).fit.factor == pytest.approx(0.1)


def test_lightning_csvlogger_metrics_with_grad_norm_columns(tmp_path):
    # Lightning's grad_norm() logged through CSVLogger: one row per step, empty cells where not logged
    p = tmp_path / "metrics.csv"
    head = "epoch,step,grad_2.0_norm/l1.weight,grad_2.0_norm/l1.bias,grad_2.0_norm/l2.weight,grad_2.0_norm/l2.bias," \
           "grad_2.0_norm_total,train_loss\n"
    p.write_text(head + "0,0,0.2,0.1,1.0,0.4,1.1,3\n0,1,0.2,0.1,1.0,0.4,1.1,\n0,2,,,,,,2.5\n")
    log = logs.read_log(p)
    assert [l.name for l in log.layers] == ["l1.weight", "l2.weight"] and log.steps == (0, 1)
    assert log.layers[0].bias_grad_norm == (0.1, 0.1)
    d = dg.diagnose(log)
    assert d.fit.factor == pytest.approx(0.2) and d.bias_fit.factor == pytest.approx(0.25)


# ----------------------------------------------------------------------------- issue 16: saturating is proved


def test_saturating_follows_the_proved_derivative_floor():
    from symvg.diagnose.rules import saturating

    got = {n: saturating(get_activation(n)) for n in ("sigmoid", "erf", "softplus", "hard_sigmoid", "relu",
                                                          "leaky_relu:0.1", "elu", "linear")}
    # erf was missing from the old hand list; leaky ReLU's floor 1/10 > 0; ReLU and ELU have a φ' = 1 side
    assert got == {"sigmoid": True, "erf": True, "softplus": True, "hard_sigmoid": True, "relu": False,
                   "leaky_relu:0.1": False, "elu": False, "linear": False}
    assert "relu" in [r.key for r in dg.diagnose(synthetic(0.2), "erf").remedies]
    assert "relu" not in [r.key for r in dg.diagnose(synthetic(0.2), "elu").remedies]


# ----------------------------------------------------------------------------- issue 15: event files


def _key(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _bytes_field(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _record(data: bytes) -> bytes:
    from symvg.logs.events import masked_crc32c

    head = len(data).to_bytes(8, "little")
    return (head + masked_crc32c(head).to_bytes(4, "little") + data
            + masked_crc32c(data).to_bytes(4, "little"))


def _event(step: int, *values: bytes) -> bytes:
    summary = b"".join(_bytes_field(1, v) for v in values)
    return _record(_key(2, 0) + _varint(step) + _bytes_field(5, summary))


def _scalar(tag: str, x: float) -> bytes:
    import struct

    return _bytes_field(1, tag.encode()) + _key(2, 5) + struct.pack("<f", x)


def _tensor_scalar(tag: str, x: float, plugin: bytes = b"scalars") -> bytes:
    import struct

    tensor = _key(1, 0) + _varint(1) + _bytes_field(5, struct.pack("<f", x))  # DT_FLOAT, float_val packed
    meta = _bytes_field(1, _bytes_field(1, plugin))
    return _bytes_field(1, tag.encode()) + _bytes_field(8, tensor) + _bytes_field(9, meta)


def _histogram(tag: str, sum_squares: float) -> bytes:
    import struct

    return _bytes_field(1, tag.encode()) + _bytes_field(5, _key(5, 1) + struct.pack("<d", sum_squares))


HEADER = _record(_bytes_field(3, b"brain.Event:2"))


def write_events(path: Path, steps: int = 4, layers: int = 3) -> Path:
    """A small event file: grad_norm/l<k> = 0.5^(layers-k), with TF2-style tensor scalars for the weight norm."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b"".join(_event(s, *(_scalar(f"grad_norm/l{k}", 0.5 ** (layers - k)) for k in range(1, layers + 1)),
                           *(_tensor_scalar(f"weight_norm/l{k}", 2.0) for k in range(1, layers + 1)))
                    for s in range(steps))
    path.write_bytes(HEADER + body)
    return path


def test_crc32c_matches_its_published_check_value():
    from symvg.logs.events import masked_crc32c

    crc = 0xE3069283  # crc32c(b"123456789"), the CRC catalogue's check value for CRC-32C
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    table = []  # the textbook bytewise algorithm, against the 4-bytes-at-a-time one for every tail length
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    data = bytes(np.random.default_rng(0).integers(0, 256, 40, dtype=np.uint8))
    for n in range(41):
        c = 0xFFFFFFFF
        for b in data[:n]:
            c = table[(c ^ b) & 0xFF] ^ (c >> 8)
        c ^= 0xFFFFFFFF
        assert masked_crc32c(data[:n]) == (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_event_file_read_without_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    write_events(tmp_path / "events.out.tfevents.1.host")
    log = logs.read_log(tmp_path)
    assert [l.name for l in log.layers] == ["l1", "l2", "l3"] and log.steps == (0, 1, 2, 3)
    assert log.layers[0].weight_norm == (2.0,) * 4  # from the tensor-valued scalars
    assert dg.diagnose(log).fit.factor == pytest.approx(0.5)


def test_bit_flip_is_refused_naming_file_and_record(tmp_path):
    p = write_events(tmp_path / "events.out.tfevents.1.host")
    data = bytearray(p.read_bytes())
    data[len(HEADER) + len(data[len(HEADER):]) // 2] ^= 0x10  # one bit in the middle of the body
    p.write_bytes(bytes(data))
    with pytest.raises(InvalidValueError, match=r"events.out.tfevents.1.host: record \d+ \(byte \d+\): "
                                                r"(data|length) checksum mismatch"):
        logs.read_log(tmp_path)


def test_truncated_file_is_read_to_its_last_complete_record_with_a_note(tmp_path):
    p = write_events(tmp_path / "events.out.tfevents.1.host", steps=4)
    p.write_bytes(p.read_bytes()[:-10])  # the last step's record is cut
    log = logs.read_log(tmp_path)
    assert log.steps == (0, 1, 2)
    assert any("truncated inside record 5" in n and "the 4 complete records" in n for n in log.notes)
    assert "note: events.out.tfevents.1.host: truncated" in dv.render_text(dg.diagnose(log))


@pytest.mark.parametrize("content", [bytes(range(256)) * 4, b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94."])
def test_random_bytes_or_pickle_named_as_events_file(tmp_path, content):
    p = tmp_path / "events.out.tfevents.bad"
    p.write_bytes(content)
    assert_one_line_error(cli("diagnose", str(p)), 2, "record 1 (byte 0): length checksum mismatch "
                                                      "(not a TensorBoard event file?)")


def test_tiny_or_headerless_file_is_not_an_event_file(tmp_path):
    p = tmp_path / "events.out.tfevents.x"
    p.write_bytes(b"abc")
    assert_one_line_error(cli("diagnose", str(p)), 2, "no complete record (3 bytes)")
    p.write_bytes(_event(0, _scalar("grad_norm/a", 1.0)))  # valid record, but no file header first
    assert_one_line_error(cli("diagnose", str(p)), 2, "not a TensorBoard event file")


def test_nested_runs_like_lightning_versions(tmp_path):
    write_events(tmp_path / "lightning_logs" / "version_0" / "events.out.tfevents.1.h", layers=3)
    write_events(tmp_path / "lightning_logs" / "version_1" / "events.out.tfevents.2.h", layers=4)
    assert_one_line_error(cli("diagnose", str(tmp_path)), 2,
                          "2 runs (lightning_logs/version_0, lightning_logs/version_1); choose one with --run NAME")
    r = cli("diagnose", str(tmp_path), "--run", "lightning_logs/version_1", "--format", "json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data["layers"]) == 4 and "run 'lightning_logs/version_1' of 2" in data["notes"]
    assert_one_line_error(cli("diagnose", str(tmp_path), "--run", "v9"), 2, "no run 'v9'")
    one = tmp_path / "lightning_logs" / "version_0"
    assert len(logs.read_log(one).layers) == 3  # a run directory itself needs no --run


def test_nan_scalars_in_an_event_file_are_a_divergence(tmp_path):
    p = tmp_path / "events.out.tfevents.1.h"
    body = b"".join(_event(s, _scalar("grad_norm/a", 0.1 if s < 3 else math.nan), _scalar("grad_norm/b", 1.0))
                    for s in range(5))
    p.write_bytes(HEADER + body)
    d = dg.diagnose(logs.read_log(tmp_path))
    assert d.divergence.step == 3 and d.divergence.layers == ("w1 (a)",) and d.steps_used == (0, 1, 2)


def test_gradient_histograms_give_exact_norms_and_tf_histograms_are_explained(tmp_path):
    p = tmp_path / "events.out.tfevents.1.h"
    body = b"".join(_event(s, _histogram("fc1.weight/grad", 0.01), _histogram("fc2.weight/grad", 1.0),
                           _histogram("fc1.weight", 4.0),
                           _tensor_scalar("dense/kernel_0", 0.0, plugin=b"histograms")) for s in range(2))
    p.write_bytes(HEADER + body)
    log = logs.read_log(tmp_path)
    assert [l.name for l in log.layers] == ["fc1.weight", "fc2.weight"]
    assert log.layers[0].grad_norm == pytest.approx((0.1, 0.1))  # √(sum of squares)
    assert any("1 TensorFlow histogram tag(s) ignored (dense/kernel_0)" in n and "bucket counts" in n
               for n in log.notes)
    assert any("1 histogram tag(s) not named as a gradient ignored (fc1.weight)" in n for n in log.notes)


def test_an_unbounded_activation_gives_no_bound():
    from symvg.diagnose.rules import compare_bound

    cube = get_activation("expr:z**3")  # γ = ∞, proved
    b = compare_bound(dg.fit_decay([0.25, 0.5, 1.0]), [cube, cube, None], [1.0, 1.0, 1.0])
    assert b.bound is None and b.text == "no bound: sup|φ'| is unbounded for expr:z**3"


def test_a_checksummed_record_that_is_not_an_event_is_named(tmp_path):
    p = tmp_path / "events.out.tfevents.1.h"
    p.write_bytes(HEADER + _event(0, _scalar("grad_norm/a", 1.0)) + _record(b"\x0f\xff"))  # wire type 7: no protobuf
    assert_one_line_error(cli("diagnose", str(p)), 2, "events.out.tfevents.1.h: record 3: not a readable event")


def test_the_steps_before_a_nan_are_judged_as_they_are():
    """Every norm 1 at step 0, nan at step 1: step 0 alone is healthy (flat, within the absolute range); it was
    called "Exploding gradients, uniformly across layers ... above the range", and the nan proved exploding."""
    recs = [logs.Record(s, name, 1.0 if s == 0 else math.nan) for s in (0, 1) for name in ("a", "b")]
    d = dg.diagnose(logs.GradientLog.from_records(recs, "flat-then-nan"))
    assert d.divergence.step == 1 and d.status == "exploding"  # a divergence still calls for clipping
    assert "Before it, Healthy" in d.verdict and "uniformly" not in d.verdict, d.verdict
    assert d.verdict.startswith("Diverged (nan: "), d.verdict


@pytest.mark.parametrize("name, body", [
    ("tiny.csv", "step,layer,grad_norm\n0,a,1e-400\n0,b,1e-3\n0,c,1\n"),
    ("tiny.json", '{"layers": [{"name": "a", "grad_norm": [1e-400]}, {"name": "b", "grad_norm": [1e-3]}, '
                   '{"name": "c", "grad_norm": [1]}]}'),
])
def test_a_norm_below_the_float_range_is_refused_not_read_as_0(tmp_path, name, body):
    """1e-400 is not 0: float() made it 0 and the table printed 'mean |g| 0', 'first/last 0×'."""
    p = tmp_path / name
    p.write_text(body)
    r = CliRunner().invoke(symvg.cli.cli, ["diagnose", str(p)])
    assert r.exit_code == 2 and "'1e-400' is below the float range" in r.output.replace("1e-400 is", "'1e-400' is"), r.output


# ----------------------------------------------------------------------------- the verdict's words match the table


def one_step(*norms: float) -> logs.GradientLog:
    return logs.GradientLog.from_records(logs.Record(0, k, g) for k, g in enumerate(norms, 1))


def test_a_vanishing_middle_layer_in_a_growing_fit_is_not_said_to_shrink():
    """[10, 0.001, 1]: the fit going back is growth 10^0.5 ≈ 3.16; it said 'gradients shrink by a factor 3.16'."""
    d = dg.diagnose(one_step(10.0, 1e-3, 1.0))
    assert d.status == "vanishing" and d.fit.log10_factor == pytest.approx(0.5)
    assert "shrink" not in d.verdict and "grow by a factor 3.16" in d.verdict, d.verdict
    assert "1 of 3 layers (w2) below 0.01×" in d.verdict
    up = dg.diagnose(one_step(0.1, 1e3, 1.0))  # exploding middle layer, fit -0.5: it said 'grow by a factor 0.32'
    assert up.status == "exploding" and "grow" not in up.verdict and "shrink by a factor 0.32" in up.verdict
    assert "1 of 3 layers (w2) above 100×" in up.verdict


def test_uniformly_only_when_every_layer_is_outside_the_absolute_range():
    """raw |g| 5e-9 and 1e-7: only w1 is below 1e-8; it said 'uniformly ... every layer's measure is below'."""
    d = dg.diagnose(one_step(5e-9, 1e-7))
    assert d.status == "vanishing" and [l.status for l in d.layers] == ["vanishing", "healthy"]
    assert "uniformly" not in d.verdict and "every layer" not in d.verdict, d.verdict
    assert d.verdict.startswith("Vanishing gradients on the absolute scale in 1 of 2 layers (w1)")
    assert "uniformly" in dg.diagnose(one_step(5e-9, 9e-9)).verdict


def test_mixed_on_the_absolute_scale_is_not_headlined_healthy():
    """1e-9 and 1e9 with relative thresholds 1e-20…1e20: status 'mixed', the verdict began 'Healthy'."""
    d = dg.diagnose(one_step(1e-9, 1e9), vanishing_below=1e-20, exploding_above=1e20)
    assert d.status == "mixed" and [l.status for l in d.layers] == ["vanishing", "exploding"]
    assert d.verdict.startswith("Mixed on the absolute scale"), d.verdict
    assert "Healthy" not in d.verdict


def _bias_log(deltas, spectral):
    return logs.GradientLog.from_records(logs.Record(0, k, d, bias_grad_norm=d, spectral_norm=s)
                                         for k, (d, s) in enumerate(zip(deltas, spectral), 1))


def test_a_log_on_the_bound_at_every_step_is_consistent():
    """δ = 1e-4, 0.01, 0.01, 1 with ‖W₂‖₂ = 0.04, ‖W₃‖₂ = 4, ‖W₄‖₂ = 0.04 (sigmoid, γ = 1/4): every step back is
    exactly γ·‖W_(k+1)‖₂ (0.01, 1, 0.01). The least-squares slope (0.3·Δ1 + 0.4·Δ2 + 0.3·Δ3 = -1.2 in log10) exceeds the
    mean bound (-4/3), and it said 'above the bound: activation norms change across layers' -- about bias gradients."""
    d = dg.diagnose(_bias_log([1e-4, 0.01, 0.01, 1.0], [1.0, 0.04, 4.0, 0.04]), "sigmoid")
    assert d.bias_fit.log10_factor == pytest.approx(-1.2) and d.bound.bound == pytest.approx(10 ** (-4 / 3))
    assert d.bound.consistent is True and "above the bound" not in d.bound.text, d.bound.text
    # one step over its own bound is caught although the fit (-1.76) is below the mean bound (-4/3), which the old
    # comparison called consistent: w3→w2 is 10^0.1 > γ·‖W₃‖₂ = 1
    over = dg.diagnose(_bias_log([10 ** -5.9, 10 ** -2.9, 1e-3, 1.0], [1.0, 0.04, 4.0, 0.04]), "sigmoid")
    assert over.bias_fit.log10_factor == pytest.approx(-1.76)
    assert over.bound.consistent is False and "above the bound at 1 of 3 steps back (w3→w2)" in over.bound.text
    assert "activation norms" not in over.bound.text  # δ_k carries no activation norm


@pytest.mark.parametrize("cell", ["１e-400", "1_000", "١"])
def test_a_cell_that_is_not_an_ascii_decimal_is_refused(tmp_path, cell):
    """float() reads '1_000' as 1000, '١' (Arabic-Indic one) as 1 and '１e-400' (full-width) as 0 -- a dead
    gradient, past the below-the-range check, which looks for the digits 1-9."""
    p = tmp_path / "g.csv"
    p.write_text(f"step,layer,grad_norm\n0,1,{cell}\n0,2,1\n0,3,1\n", encoding="utf-8")
    assert_one_line_error(cli("diagnose", str(p)), 2, f"{cell!r} is not a number")


def test_a_step_in_non_ascii_digits_is_refused(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("step,layer,grad_norm\n１,1,1\n１,2,1\n", encoding="utf-8")
    assert_one_line_error(cli("diagnose", str(p)), 2, "is not an integer")


@pytest.mark.parametrize("name", ['"x\ny"', '"a\tb"'])
def test_a_layer_name_with_a_control_character_is_refused(tmp_path, name):
    """A quoted CSV name with a line break printed as two lines, splitting the text table and the Markdown one."""
    p = tmp_path / "g.csv"
    p.write_text(f"step,layer,grad_norm\n0,{name},0.5\n0,b,1\n")
    assert_one_line_error(cli("diagnose", str(p)), 2, "holds a control character")
    with pytest.raises(InvalidValueError, match="control character"):
        logs.GradientLog.from_records([logs.Record(0, "x\ny", 1.0), logs.Record(0, "b", 1.0)])


def test_wide_csv_metric_columns_are_not_read_as_layers(tmp_path):
    """Lightning's 'lr-Adam' and 'loss_epoch' were layers w3, w4: every layer was judged against a loss of 2."""
    p = tmp_path / "wide.csv"
    p.write_text("step,fc1,fc2,lr-Adam,train_loss_step,loss_epoch\n0,0.001,1,0.1,2.3,2.0\n1,0.001,1,0.1,2.1,2.0\n")
    d = dg.diagnose(logs.read_log(p))
    assert [l.name for l in d.layers] == ["fc1", "fc2"]
    assert d.layers[0].log10_relative == pytest.approx(-3.0)


def test_plot_shows_a_layer_of_mean_gradient_0(tmp_path):
    """[0, 1, 1]: the table says w1 is vanishing; the plot left w1 off (log10 0 = -inf) and showed healthy dots only."""
    pytest.importorskip("matplotlib")
    svg = tmp_path / "g.svg"
    dv.plot(dg.diagnose(one_step(0.0, 1.0, 1.0)), svg)
    assert "mean gradient 0" in svg.read_text()


def test_mean_field_of_a_diagnosis_needs_chi1_only(monkeypatch):
    """Each layer called mean_field, whose correlation map c* takes 1-3 s in the chaotic phase: 40 tanh layers
    with σw² in 0.5…3 took 35 s. χ1 alone is asked now; tanh, σw² = 2.5, σb² = 0.3: χ1 = 0.99892927351842 (mpmath, 25 digits)."""
    from symvg.theory.meanfield import theory

    def no_correlations(*args, **kwargs):
        raise AssertionError("diagnose computed the correlation map")

    monkeypatch.setattr(theory, "_correlations", no_correlations)
    d = dg.diagnose(synthetic(1.0, n_layers=3, steps=1, noise=0.0, sigma_w2=2.5, sigma_b2=0.3), "tanh")
    assert d.mean_field.factor == pytest.approx(math.sqrt(0.9989292735184199), rel=1e-9)


def test_a_split_named_grad_norm_is_not_a_layer(tmp_path):
    """Hugging Face's Trainer logs the total norm as train/grad_norm: it became a layer 'train' (w1, 5× the last)."""
    p = tmp_path / "hf.csv"
    p.write_text("step,train/grad_norm,grad_norm/fc1,grad_norm/fc2\n0,5,0.001,1\n1,5,0.001,1\n")
    d = dg.diagnose(logs.read_log(p))
    assert [l.name for l in d.layers] == ["fc1", "fc2"] and d.log10_first_last == pytest.approx(-3.0)
    assert events.match_tag("eval/grad_norm") is None and events.match_tag("fc1/grad_norm") == ("grad_norm", "fc1")


def test_write_csv_quotes_names_holding_a_comma_or_a_quote(tmp_path):
    """write_csv joined cells with ',' unquoted: a layer 'fc,1' wrote four cells where three belong."""
    p = tmp_path / "g.csv"
    logs.write_csv([logs.Record(0, 'fc,1', 0.5), logs.Record(0, 'say "b"', 1.0)], p)
    assert [(l.name, l.grad_norm) for l in logs.read_csv(p).layers] == [("fc,1", (0.5,)), ('say "b"', (1.0,))]


def test_options_that_do_not_apply_to_the_log_are_refused(tmp_path):
    """--run x on a CSV and --columns on a JSON log were dropped without a word."""
    assert_one_line_error(cli("diagnose", str(SIGMOID_CSV), "--run", "x"), 2, "--run chooses a run in a TensorBoard")
    p = tmp_path / "g.json"
    p.write_text('{"layers": [{"name": "a", "grad_norm": [1]}, {"name": "b", "grad_norm": [2]}]}')
    assert_one_line_error(cli("diagnose", str(p), "--columns", "step=epoch"), 2, "--columns maps CSV column names")


def test_a_bounded_gamma_beyond_float64_is_still_a_bound():
    """leaky_relu:1e400 has γ = 1e400, proved; float(γ) = inf made it 'no bound: sup|φ'| is unbounded'."""
    d = dg.diagnose(synthetic(0.5, n_layers=3, noise=0.0, spectral_norm=1.0), "leaky_relu:1e400")
    assert "unbounded" not in d.bound.text and "bound 1.0e+400·‖W‖ predicts ≤ 1.0e+400" in d.bound.text, d.bound.text
    assert d.bound.consistent is True  # 0.5 ≤ 1e400·1 at every step
    assert "no bound: sup|φ'| is unbounded" in dg.diagnose(synthetic(0.5, n_layers=3), "expr:z**2").bound.text


def test_the_scale_says_when_only_some_layers_logged_weight_norms():
    """Weight norms for 2 of 3 layers: the raw scale is used and it said 'no weight norms logged'."""
    recs = [logs.Record(0, 1, 1.0, weight_norm=2.0), logs.Record(0, 2, 1.0), logs.Record(0, 3, 1.0, weight_norm=2.0)]
    d = dg.diagnose(logs.GradientLog.from_records(recs))
    assert d.scale.evidence.startswith("raw |g|") and "no weight norms" not in d.scale.evidence
    assert "weight norms > 0 logged for 2 of 3 layers only" in d.scale.evidence
    assert "no weight norms logged" in dg.diagnose(one_step(1.0, 1.0), lr=0.1).scale.evidence


def test_a_dead_network_is_diagnosed_not_refused(tmp_path):
    """Mean gradients 0, 0, 1: exit 2 'need a nonzero mean gradient norm in at least 2 layers to fit a decay'.
    Truth: w1 and w2 pass no gradient at all -- vanishing, factor 0."""
    d = dg.diagnose(one_step(0.0, 0.0, 1.0), "sigmoid")
    assert d.status == "vanishing" and [l.status for l in d.layers] == ["vanishing", "vanishing", "healthy"]
    assert d.fit.factor == 0 and "2 of 3 layers (w1, w2) below" in d.verdict
    p = tmp_path / "dead.csv"
    logs.write_csv([logs.Record(0, k, g) for k, g in enumerate([0.0, 0.0, 1.0], 1)], p)
    r = cli("diagnose", str(p), "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["fit"]["factor"] == 0.0
    pytest.importorskip("matplotlib")
    dv.plot(d, tmp_path / "dead.svg")  # no fit line to draw, and no warning


def test_two_tags_for_one_layer_quantity_do_not_mix(tmp_path):
    """A scalar grad_norm/fc1.weight (1e-4) and a histogram fc1.weight/grad (norm 6) both give fc1's gradient norm:
    whichever came later overwrote the other step by step (the diagnosis read 6). The scalar is kept, and said."""
    p = tmp_path / "events.out.tfevents.1.h"
    body = b"".join(_event(s, _histogram("fc1.weight/grad", 36.0), _scalar("grad_norm/fc1.weight", 1e-4),
                           _scalar("grad_norm/fc2.weight", 1.0)) for s in range(2))
    p.write_bytes(HEADER + body)
    log = logs.read_log(tmp_path)
    assert [l.name for l in log.layers] == ["fc1.weight", "fc2.weight"]
    assert log.layers[0].grad_norm == pytest.approx((1e-4, 1e-4), rel=1e-6)  # float32 scalars
    assert any("fc1.weight/grad (kept grad_norm/fc1.weight)" in n for n in log.notes), log.notes


def test_one_step_is_said_in_the_singular():
    text = dv.render_text(dg.diagnose(one_step(0.5, 1.0)))
    assert text.splitlines()[0].endswith("(1 step, 0)"), text.splitlines()[0]  # it said '(1 steps, 0..0)'


def test_an_implied_weight_norm_below_float64_is_not_written_as_0_in_json():
    """measured 1e-160 per layer against γ = 1e250: ‖W‖ ≥ 1e-410 (the text says so); JSON wrote 0.0."""
    d = dg.diagnose(synthetic(1e-160, n_layers=2, noise=0.0), "leaky_relu:1e250")
    data = d.as_dict()["bound"]
    assert d.bound.text.endswith("consistent if ‖W‖ ≥ 1.0e-410")
    assert data["implied_weight_norm"] is None and data["log10_implied_weight_norm"] == pytest.approx(-410)
    plain = dg.diagnose(synthetic(0.5, noise=0.0), "sigmoid").as_dict()["bound"]
    assert plain["implied_weight_norm"] == pytest.approx(2.0) and plain["log10_implied_weight_norm"] == pytest.approx(math.log10(2))
