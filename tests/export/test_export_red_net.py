"""Export and validation of a RED-fairSIM network (``model.architecture: red_net``).

RED-Net reads one classical SIM reconstruction (1 channel, on the 2x grid) and returns the denoised
image of the same size. One tiny RED-Net (4 filters, depth 1) is exported once per module in every
format; the tests check the tensors (input ``image``, scale 1), the test data (the classical
reconstruction of the synthetic stack and the network's output for it) and that the package
validates. The ``jvm`` test at the end runs the package on DeepImageJ's engines in a JVM and on
DeepImageJ's own code (skipped with the reason when Java, Maven or the vendor folder is missing).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import deepimagej_missing, make_tiny_run, tools_missing
from srredsim.errors import SrredsimError

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("BIOIMAGEIO_HTTP_TIMEOUT", "1")

TEST_SIZE = 32  # raw pixels: a 64 x 64 reconstruction


@pytest.fixture(scope="module")
def red_run(tmp_path_factory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("red") / "tiny_red", depth=1, positive_biases=True,
                         architecture="red_net")


@pytest.fixture(scope="module")
def exported(red_run, tmp_path_factory):
    from srredsim.export.api import export_run

    return export_run(red_run, "all", tmp_path_factory.mktemp("red_export") / "all", nchw=True, test_size=TEST_SIZE)


@pytest.fixture(scope="module")
def package(exported) -> Path:
    return exported.outputs["bioimageio"]


@pytest.fixture(scope="module")
def rdf(package) -> dict:
    with zipfile.ZipFile(package) as zf:
        return yaml.safe_load(zf.read("rdf.yaml"))


def member(package: Path, name: str) -> np.ndarray:
    with zipfile.ZipFile(package) as zf, zf.open(name) as f:
        return np.load(f)


# ---- export -----------------------------------------------------------------------------------
def test_every_format_is_written_and_reproduces_keras(exported):
    outs = exported.outputs
    assert set(outs) == {"bioimageio", "onnx", "onnx_nchw", "savedmodel"}
    assert (outs["savedmodel"] / "saved_model.pb").is_file()
    assert {"onnx", "onnx_nchw", "savedmodel"} <= set(exported.parity)
    assert all(d <= 1e-4 for d in exported.parity.values()), exported.parity
    meta = json.loads((outs["savedmodel"] / "srredsim.json").read_text())
    assert (meta["architecture"], meta["scale"], meta["frames"], meta["input_id"]) == ("red_net", 1, 1, "image")


def test_onnx_and_savedmodel_take_one_image_and_keep_its_size(exported):
    from srredsim.export.meta import parse_metadata, scale_of
    from srredsim.export.onnx_export import onnx_info, onnx_predict_fn
    from srredsim.export.savedmodel import read_signatures, savedmodel_predict_fn

    nhwc, nchw = onnx_info(exported.outputs["onnx"]), onnx_info(exported.outputs["onnx_nchw"])
    assert nhwc["opset"] == 17 and nhwc["ir_version"] <= 8
    assert nhwc["inputs"] == {"image": [None, None, None, 1]} and nhwc["outputs"] == {"sr": [None, None, None, 1]}
    assert nchw["inputs"] == {"image": [None, 1, None, None]} and nchw["outputs"] == {"sr": [None, 1, None, None]}
    assert scale_of(parse_metadata(nhwc["metadata"]["srredsim"])) == 1
    sigs = read_signatures(exported.outputs["savedmodel"])["signatures"]
    for sig in ("serve", "serving_default"):
        assert sigs[sig]["inputs"]["image"][1] == [-1, -1, -1, 1] and list(sigs[sig]["outputs"]) == ["sr"]
    x = np.random.default_rng(1).random((2, 48, 40, 1), dtype=np.float32)
    a = onnx_predict_fn(exported.outputs["onnx"])(x)
    b = savedmodel_predict_fn(exported.outputs["savedmodel"], input_id="image")(x)
    c = onnx_predict_fn(exported.outputs["onnx_nchw"])(x)
    assert a.shape == b.shape == c.shape == (2, 48, 40, 1)
    assert np.max(np.abs(a - b)) < 1e-5 and np.max(np.abs(a - c)) < 1e-5 and float(a.std()) > 0


def test_onnx_graphs_stay_four_dimensional(exported, package):
    """The one-channel input and output are reordered by 4-D Reshapes, never through a rank-5
    Unsqueeze/Squeeze (tf2onnx's reshape optimizer, left out: a CI export of such a graph returned
    (1, 1, 256, 256, 1)); every exported ONNX file returns NHWC (or NCHW) images at batch 1 and 2."""
    import onnx
    import onnxruntime as ort

    graphs = {"onnx": exported.outputs["onnx"].read_bytes(), "onnx_nchw": exported.outputs["onnx_nchw"].read_bytes()}
    with zipfile.ZipFile(package) as zf:
        graphs["package"] = zf.read("model.onnx")
    for name, data in graphs.items():
        proto = onnx.shape_inference.infer_shapes(onnx.load_from_string(data))
        assert not {"Unsqueeze", "Squeeze"} & {n.op_type for n in proto.graph.node}, name
        ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in proto.graph.value_info
                 if v.type.tensor_type.HasField("shape") and v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
        assert ranks and max(ranks.values()) == 4, (name, {k: r for k, r in ranks.items() if r != 4})
        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        for batch in (1, 2):
            shape = (batch, 1, 40, 56) if name == "onnx_nchw" else (batch, 40, 56, 1)
            assert sess.run(None, {"image": np.zeros(shape, np.float32)})[0].shape == shape, (name, batch)


def test_a_converted_graph_of_the_wrong_shape_is_refused(red_run, exported):
    """check_output_shape runs the graph against the Keras model's output shape: one that returns a
    rank-5 tensor is refused with both shapes named; the exporter's parity no longer reshapes an
    answer to fit."""
    import onnx

    from srredsim.export.api import _parity
    from srredsim.export.onnx_export import check_output_shape
    from srredsim.runfolder import load_run

    model = load_run(red_run).load_model()
    good = onnx.load(str(exported.outputs["onnx"]))
    check_output_shape(good, model, (None, None, None, 1))  # the exported graph passes
    bad = onnx.load(str(exported.outputs["onnx"]))
    last = bad.graph.output[0]
    for node in bad.graph.node:
        node.output[:] = ["sr_4d" if o == "sr" else o for o in node.output]
    bad.graph.initializer.append(onnx.numpy_helper.from_array(np.array([0], np.int64), "lead_axis"))
    bad.graph.node.append(onnx.helper.make_node("Unsqueeze", ["sr_4d", "lead_axis"], ["sr"]))
    last.type.tensor_type.shape.dim.insert(0, onnx.TensorShapeProto.Dimension(dim_value=1))
    onnx.checker.check_model(bad, full_check=True)  # a consistent graph: only running it shows the rank
    with pytest.raises(SrredsimError, match=r"returns \(1, 2, 64, 96, 1\) for a \(2, 64, 96, 1\) input, the Keras "
                                            r"model \(2, 64, 96, 1\)"):
        check_output_shape(bad, model, (None, None, None, 1), what="test")
    x = np.zeros((1, 16, 16, 1), np.float32)
    with pytest.raises(SrredsimError, match=r"returns shape \(1, 1, 16, 16, 1\).*Keras \(1, 16, 16, 1\)"):
        _parity(x, {"onnx": lambda v: v[None]}, x, 1e-4)


def test_rdf_describes_one_reconstruction_in_and_the_same_size_out(rdf, package):
    from srredsim.export.meta import halo

    (ipt,), (out,) = rdf["inputs"], rdf["outputs"]
    assert ipt["id"] == "image" and out["id"] == "sr"
    assert [a.get("id", a["type"]) for a in ipt["axes"]] == ["batch", "y", "x", "channel"]
    assert ipt["axes"][3]["channel_names"] == ["sim_reconstruction"] and out["axes"][3]["channel_names"] == ["sr"]
    assert "classical SIM reconstruction" in ipt["description"] and "0.04 um" in ipt["description"]
    h = halo(_model_cfg(rdf))
    for i in (1, 2):
        assert ipt["axes"][i]["scale"] == out["axes"][i]["scale"] == 1.0  # same size for the spec and for JDLL
        assert out["axes"][i]["size"] == {"tensor_id": "image", "axis_id": ipt["axes"][i]["id"]}
        assert out["axes"][i]["halo"] == h == 12  # output pixels = input pixels: 2 * (2 * 1 + 1) + 6
        assert ipt["axes"][i]["size"] == {"min": 32, "step": 16}  # the smallest multiple of 16 above 2 * halo
    assert ipt["pad"] == {"mode": "symmetric"}
    assert [p["id"] for p in ipt["preprocessing"]] == ["ensure_dtype", "scale_range", "ensure_dtype"]
    srr = rdf["config"]["srredsim"]
    assert (srr["architecture"], srr["scale"], srr["frames"], srr["input_id"], srr["halo"]) == ("red_net", 1, 1, "image", 12)
    assert (srr["angles"], srr["phases"], srr["pixel_size_um"]) == (3, 5, 0.08)  # the raw stack's layout
    assert rdf["config"]["bioimageio"]["architecture_type"] == "RED-Net"
    assert rdf["config"]["deepimagej"]["test_information"]["inputs"][0]["name"] == "image"
    assert rdf["config"]["deepimagej"]["test_information"]["inputs"][0]["pixel_size"]["x"] == "0.04 µm"
    assert {c["doi"] for c in rdf["cite"]} == {"10.1364/PRJ.416437", "10.1038/ncomms10980", "10.48550/arXiv.1603.09056"}
    assert {"red-fairsim", "red-net", "denoising", "deepimagej"} <= set(rdf["tags"]) and "sr-redsim" not in rdf["tags"]
    assert rdf["format_version"] == "0.5.10" and rdf["documentation"] == "documentation.md"
    with zipfile.ZipFile(package) as zf:
        assert "://" not in zf.read("rdf.yaml").decode()  # offline validation


def _model_cfg(rdf):
    from srredsim.config import ModelConfig

    return ModelConfig.model_validate(rdf["config"]["srredsim"]["model"])


def test_size_and_halo_read_the_same_by_the_spec_and_by_jdll(package):
    """Spec: out = in * in.scale / out.scale + offset, input halo = halo * out.scale / in.scale;
    JDLL 0.6.1: out = in * out.scale + 2 * offset, input halo = (halo + offset) / out.scale. Both
    must read 'the same size' and an input halo equal to the output halo for a scale-1 model."""
    from bioimageio.core.digest_spec import get_input_halo
    from bioimageio.spec import load_description

    descr = load_description(str(package), perform_io_checks=False)
    ipt, out = descr.inputs[0], descr.outputs[0]
    in_y, out_y = ipt.axes[1], out.axes[1]
    input_halo = get_input_halo(descr)[ipt.id][in_y.id]
    for n in range(4):
        size = in_y.size.get_size(n)
        spec = out_y.size.get_size(out_y, in_y, n=n)
        jdll = int(size * out_y.scale + 2 * out_y.size.offset)
        assert spec == jdll == size
        assert input_halo.left == int((out_y.halo + out_y.size.offset) / out_y.scale) == out_y.halo


def test_test_input_is_the_classical_reconstruction_and_output_the_network(red_run, package):
    from srredsim.config import OpticsConfig
    from srredsim.models import inference_twin
    from srredsim.normalization import normalize_raw
    from srredsim.redfairsim import network_input
    from srredsim.export.testdata import synthetic_raw_stack
    from srredsim.runfolder import load_run

    x, y = member(package, "test_input.npy"), member(package, "test_output.npy")
    assert x.shape == y.shape == (1, 2 * TEST_SIZE, 2 * TEST_SIZE, 1) and x.dtype == y.dtype == np.float32
    recon, _ = network_input(synthetic_raw_stack(OpticsConfig(), TEST_SIZE, seed=0), OpticsConfig())
    np.testing.assert_allclose(x[0, ..., 0], recon, rtol=0, atol=1e-5 * float(np.abs(recon).max()))
    run = load_run(red_run)
    model = inference_twin(run.load_model(), run.config.model)
    expected = np.asarray(model.predict_on_batch(normalize_raw(x, run.config.normalization)), np.float32)
    assert np.max(np.abs(expected - y)) < 1e-5
    assert float(y.std()) > 0 and not np.allclose(y, normalize_raw(x, run.config.normalization), atol=1e-3)


def test_documentation_says_the_input_is_a_classical_reconstruction(package):
    with zipfile.ZipFile(package) as zf:
        doc = zf.read("documentation.md").decode()
        names = set(zf.namelist())
    assert {"cover.png", "keras_model.h5", "model.onnx", "tf_saved_model_bundle.zip"} <= names
    for text in ("RED-fairSIM", "not the raw stack", "classical 2D SIM reconstruction on the 2x grid", "fairSIM",
                 "srredsim reconstruct", "10.1364/PRJ.416437", "10.48550/arXiv.1603.09056", "10.1038/ncomms10980",
                 "Mao", "same size", "Input tensor `image`"):
        assert text in doc, text
    assert "fairsim_reconstruct.py" in doc and "a0p0" not in doc


def test_default_name_and_description_are_red_fairsim(red_run):
    from srredsim.config import RunConfig
    from srredsim.export.bioimageio_package import PackageMetadata

    cfg = RunConfig.load(red_run).with_overrides({"metadata.name": "SR-REDSIM", "metadata.description":
                                                  RunConfig().metadata.description})
    meta = PackageMetadata.from_config(cfg)
    assert meta.name == "RED-fairSIM" and "RED-Net" in meta.description and "classical" in meta.description
    assert PackageMetadata.from_config(RunConfig.load(red_run)).name == "Tiny SR-REDSIM test"  # a user's own name


# ---- validate ---------------------------------------------------------------------------------
def test_validate_passes_every_check(package):
    from srredsim.export.checks import failed_checks, format_table
    from srredsim.export.validate import validate_package

    rows = validate_package(package)
    table = format_table(rows)
    assert not failed_checks(rows), table
    names = {r.name: r for r in rows}
    for name in ("package", "spec", "dij.axes", "dij.channel_names", "dij.processing", "dij.onnx.opset",
                 "dij.onnx.io", "dij.tf.zip", "dij.tf.signature", "core.tf.serve", "core.keras_hdf5",
                 "core.tensorflow_saved_model_bundle", "core.onnx", "parity.keras~onnx", "parity.keras~savedmodel",
                 "parity.onnx~savedmodel"):
        assert names[name].status == "pass", table
    assert "['image'] -> ['sr']" in names["dij.tf.signature"].detail


def test_a_raw_stack_network_under_a_red_net_config_is_refused():
    from srredsim.config import RunConfig
    from srredsim.export.api import check_model_io
    from srredsim.models import build_red_net, build_sr_redsim

    cfg = RunConfig.from_dict({"model": {"architecture": "red_net", "in_channels": 1, "filters": 4, "depth": 1}})
    check_model_io(build_red_net(4, 1), cfg)
    with pytest.raises(SrredsimError, match="15 input channels"):
        check_model_io(build_sr_redsim(15, 4, 1), cfg)
    with pytest.raises(SrredsimError, match=r"expected \(1, 32, 32, 1\)"):
        check_model_io(build_sr_redsim(1, 4, 1), cfg)


def test_test_input_from_a_raw_stack_or_a_reconstruction(red_run, tmp_path):
    from srredsim.config import RunConfig
    from srredsim.export.api import prepare_test_input
    from srredsim.export.testdata import synthetic_raw_stack
    from srredsim.redfairsim import network_input
    from srredsim.tiff import write_tiff

    cfg = RunConfig.load(red_run)
    raw = synthetic_raw_stack(cfg.optics, 40, seed=2)
    write_tiff(tmp_path / "raw.tif", raw, pixel_size_um=0.08)
    x = prepare_test_input(cfg, tmp_path / "raw.tif", 128, seed=0)
    recon, _ = network_input(raw, cfg.optics)
    assert x.shape == (1, 80, 80) and np.allclose(x[0], recon)  # 80 = 32 + 3 * 16: the whole reconstruction
    image = np.random.default_rng(0).random((70, 90), dtype=np.float32)
    write_tiff(tmp_path / "recon.tif", image[None], pixel_size_um=0.04)
    y = prepare_test_input(cfg, tmp_path / "recon.tif", 128, seed=0)
    assert y.shape == (1, 64, 64) and np.array_equal(y[0], image[3:67, 13:77])  # used as it is, cropped valid
    write_tiff(tmp_path / "small.tif", image[None, :20, :20], pixel_size_um=0.04)
    with pytest.raises(SrredsimError, match="smaller than the package's minimum"):
        prepare_test_input(cfg, tmp_path / "small.tif", 128, seed=0)


def test_cli_exports_one_format(red_run, tmp_path, capsys):
    from srredsim.cli import main
    from srredsim.export.onnx_export import onnx_info

    out = tmp_path / "red.onnx"
    assert main(["export", str(red_run), "--format", "onnx", "-o", str(out), "--quiet"]) == 0
    info = onnx_info(out)
    assert info["inputs"] == {"image": [None, None, None, 1]} and '"scale": 1' in info["metadata"]["srredsim"]


# ---- the DeepImageJ check's pieces for scale 1 ---------------------------------------------------
def test_same_grid_prediction_mirrors_by_the_halo_and_crops():
    """What the DeepImageJ check compares with: srredsim's whole-image prediction at scale 1,
    extended by the halo with the RDF's symmetric padding and cropped back."""
    from srredsim.predict import predict_normalized

    x = np.random.default_rng(0).random((20, 24, 1), dtype=np.float32)
    seen = []

    def shift(batch):  # a "network" whose output at a pixel is its left neighbour's input
        seen.append(batch.shape)
        return np.roll(batch, 1, axis=2)

    y = predict_normalized(shift, x, tile=0, halo=3, scale=1)
    assert seen == [(1, 26, 30, 1)] and y.shape == (20, 24)
    assert np.array_equal(y[:, 1:], x[:, :-1, 0]) and np.array_equal(y[:, 0], x[:, 0, 0])  # symmetric: edge repeated
    with pytest.raises(SrredsimError, match="scale"):
        predict_normalized(lambda b: np.repeat(np.repeat(b, 2, 1), 2, 2), x, tile=0, halo=3, scale=1)


def test_scale_of_defaults_to_2_for_older_artifacts():
    from srredsim.export.meta import scale_of

    assert scale_of({"scale": 1}) == 1 and scale_of({}) == 2 and scale_of(None) == 2 and scale_of({"scale": "x"}) == 2


def test_percentile_rule_difference_warns_only_for_float_inputs_within_the_bound(tmp_path):
    """A dij row above the tolerance is a warning only when JDLL's percentile rule explains all of it,
    the input is a float reconstruction (percentile_bound given) and the difference is within the bound."""
    from srredsim.export import deepimagej as dij

    ref = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    out = ref * np.float32(1.0005)
    path = tmp_path / "out.tif"
    from srredsim.tiff import write_tiff

    write_tiff(path, out[None])
    run = dij.DeepImageJRun(ok=True, detail="ok", outputs=[path], environment={}, run={}, returncode=0, seconds=1.0,
                            netns=True, stdout="", stderr="")
    explained = {"numpy": (0.0, 1.0), "jdll": (0.0, 0.9995), "image": out.copy()}
    unexplained = dict(explained, image=ref * np.float32(1.0002))
    row = lambda **kw: dij._compare_row("dij.onnx", run, ref, 4, 1e-4, "srredsim", 1.0, scale=1, **kw)  # noqa: E731
    assert row(explain=explained, percentile_bound=1e-3).status == "warn"
    assert row(explain=explained).status == "fail"  # raw-stack packages: judged as before
    assert row(explain=unexplained, percentile_bound=1e-3).status == "fail"
    assert row(explain=explained, percentile_bound=1e-4).status == "fail"
    assert dij._compare_row("dij.onnx", run, out, 4, 1e-4, "srredsim", 1.0, scale=1).status == "pass"


# ---- jvm: DeepImageJ's engines and DeepImageJ's own code on a tiny RED-Net package ------------------
@pytest.mark.jvm
@pytest.mark.skipif(bool(tools_missing()), reason=f"JVM harness unavailable: {tools_missing()}")
@pytest.mark.skipif(deepimagej_missing() is not None, reason=str(deepimagej_missing()))
def test_validate_jvm_deepimagej_on_a_tiny_red_net_package(tmp_path_factory, capsys):
    """`srredsim validate PKG --jvm --deepimagej` on a RED-Net package exported with the default test
    size (a 256 x 256 reconstruction): every row passes (warnings allowed), and DeepImageJ's image equals
    srredsim's prediction on the same reconstruction to 1e-3 of its peak."""
    import onnxruntime as ort

    from srredsim.cli import main
    from srredsim.export import deepimagej as dij
    from srredsim.export.api import export_run
    from srredsim.export.safezip import safe_extract
    from srredsim.normalization import NormalizationConfig, normalize_raw
    from srredsim.predict import extend_border

    root = tmp_path_factory.mktemp("red_jvm")
    run = make_tiny_run(root / "run", positive_biases=True, architecture="red_net")  # 4 filters, depth 2
    pkg = export_run(run, "bioimageio", root / "red.bioimageio.zip").outputs["bioimageio"]
    report = root / "report.json"
    rc = main(["validate", str(pkg), "--jvm", "--deepimagej", "--json", str(report)])
    rows = {r["name"]: r for r in json.loads(report.read_text())}
    assert rc == 0, [(r["name"], r["detail"]) for r in rows.values() if r["status"] == "fail"]
    for name in ("jvm.onnx", "jvm.tensorflow_saved_model_bundle", "dij.rdf", "dij.engines", "agree.core_blocks"):
        assert rows[name]["status"] == "pass", (name, rows[name]["detail"])
    for name in ("dij.onnx", "dij.tensorflow_saved_model_bundle", "dij.fiji_macro"):
        assert rows[name]["status"] in ("pass", "warn"), (name, rows[name]["detail"])
        assert "256x256 image" in rows[name]["detail"]
    assert "pixel size 0.04 um (the input's)" in rows["dij.fiji_macro"]["detail"]

    # independently: DeepImageJ's own output against the ONNX weights run here on the mirrored image
    keep = root / "keep"
    dij_rows = dij.check_package(pkg, weight_formats=("onnx",), macro=False, keep=keep)
    assert {r.name: r.status for r in dij_rows}["dij.onnx"] in ("pass", "warn")
    (out_tif,) = sorted(keep.glob("srredsim-dij-*/fiji-onnx/out/*.tif"))
    dij_image = dij.read_output(out_tif)
    folder = safe_extract(pkg, root / "pkg")
    x = np.load(folder / "test_input.npy")[0]
    halo = yaml.safe_load((folder / "rdf.yaml").read_text())["outputs"][0]["axes"][1]["halo"]
    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    xn = extend_border(np.asarray(normalize_raw(x, NormalizationConfig(mode="percentile")), np.float32), halo)
    ref = sess.run(None, {"image": xn[None]})[0][0, halo:-halo, halo:-halo, 0]
    rel = float(np.abs(dij_image - ref).max() / np.abs(ref).max())
    assert dij_image.shape == ref.shape == x.shape[:2] and rel <= 1e-3, rel
    with capsys.disabled():
        print(f"\n[red-net deepimagej] DeepImageJ (ONNX) vs the ONNX weights here: max |diff| / peak {rel:.1e}")
        for n in ("jvm.onnx", "jvm.tensorflow_saved_model_bundle", "dij.onnx", "dij.tensorflow_saved_model_bundle",
                  "dij.fiji_macro"):
            print(f"  {n}: {rows[n]['status']}: {rows[n]['detail'][:400]}")
