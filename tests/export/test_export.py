"""Export and validation: SavedModel, ONNX and bioimage.io packages of a tiny model, offline.

One tiny run (4 filters, depth 1, 32x32 test input) is exported once per module in every format;
the tests then validate it, run it on every engine, break copies of it in the ways DeepImageJ or
bioimageio.core would notice, and feed unsafe archives to the readers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import make_tiny_run
from srredsim.errors import SrredsimError

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("BIOIMAGEIO_HTTP_TIMEOUT", "1")


# ---- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_tiny_run(tmp_path_factory.mktemp("run") / "tiny", depth=1, positive_biases=True)


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    from srredsim.export.api import export_run

    out = tmp_path_factory.mktemp("export") / "all"
    result = export_run(run_dir, "all", out, nchw=True, test_size=32)
    return result


@pytest.fixture(scope="module")
def package(exported) -> Path:
    return exported.outputs["bioimageio"]


@pytest.fixture(scope="module")
def validated(package):
    from srredsim.export.validate import validate_package

    return validate_package(package)


@pytest.fixture()
def unpacked(package, tmp_path) -> Path:
    """A writable unpacked copy of the package, to break."""
    from srredsim.export.safezip import safe_extract

    return safe_extract(package, tmp_path / "pkg")


def rdf_of(folder: Path) -> dict:
    return yaml.safe_load((folder / "rdf.yaml").read_text())


def write_rdf(folder: Path, rdf: dict) -> None:
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf, sort_keys=False))


def rehash(folder: Path, entry: dict) -> None:
    entry["sha256"] = hashlib.sha256((folder / entry["source"]).read_bytes()).hexdigest()


def by_name(results) -> dict:
    return {r.name: r for r in results}


def lint_only(path):
    from srredsim.export.validate import validate_package

    return validate_package(path, core=False, parity=False)


# ---- export -----------------------------------------------------------------------------------
def test_export_all_writes_every_format(exported):
    outs = exported.outputs
    assert set(outs) == {"bioimageio", "onnx", "onnx_nchw", "savedmodel"}
    for p in outs.values():
        assert p.exists()
    assert (outs["savedmodel"] / "saved_model.pb").is_file() and (outs["savedmodel"] / "variables").is_dir()
    assert (outs["savedmodel"] / "srredsim.json").is_file()
    assert all(d <= 1e-4 for d in exported.parity.values()) and {"onnx", "savedmodel"} <= set(exported.parity)
    # no temporary leftovers next to the output
    assert [p.name for p in outs["bioimageio"].parent.parent.iterdir()] == ["all"]


def test_output_size_and_halo_read_the_same_by_the_spec_and_by_jdll(package):
    """bioimageio.spec: out = in * in.scale / out.scale + offset, input halo = halo * out.scale / in.scale
    (bioimageio.core's get_input_halo); JDLL 0.6.1 (TileMaker.getOutputTiles,
    ModelDescriptorV05.calculateTotalInputHalo): out = in * out.scale + 2 * offset, input halo =
    (halo + offset) / out.scale. Both must give 2x and the same input halo for every valid size."""
    from bioimageio.core.digest_spec import get_input_halo
    from bioimageio.spec import load_description

    descr = load_description(str(package), perform_io_checks=False)
    assert descr.format_version == "0.5.12" and descr.inputs[0].pad.mode == "symmetric"  # read back as written
    ipt, out = descr.inputs[0], descr.outputs[0]
    in_y, out_y = ipt.axes[1], out.axes[1]
    input_halo = get_input_halo(descr)[ipt.id][in_y.id]
    for n in range(4):
        size = in_y.size.get_size(n)
        spec = out_y.size.get_size(out_y, in_y, n=n)
        jdll = int(size * out_y.scale + 2 * out_y.size.offset)
        assert spec == jdll == 2 * size
        assert input_halo.left == int((out_y.halo + out_y.size.offset) / out_y.scale) == out_y.halo // 2


def test_package_contents_follow_the_conventions(package):
    with zipfile.ZipFile(package) as zf:
        names = set(zf.namelist())
        rdf_text = zf.read("rdf.yaml").decode()
        with zf.open("tf_saved_model_bundle.zip") as f:
            import io

            tf_names = set(zipfile.ZipFile(io.BytesIO(f.read())).namelist())
    assert {"rdf.yaml", "documentation.md", "cover.png", "test_input.npy", "test_output.npy", "keras_model.h5",
            "model.onnx", "tf_saved_model_bundle.zip"} <= names
    assert "saved_model.pb" in tf_names and any(n.startswith("variables/") for n in tf_names)
    assert "://" not in rdf_text  # no URL: validation stays offline
    rdf = yaml.safe_load(rdf_text)
    assert rdf["format_version"].startswith("0.5") and rdf["type"] == "model"
    assert {"deepimagej", "sim", "super-resolution", "denoising"} <= set(rdf["tags"])
    assert {c["doi"] for c in rdf["cite"]} == {"10.1364/PRJ.416437", "10.1038/ncomms10980"}
    assert rdf["authors"] == [{"name": "Test Author"}] and rdf["license"] == "MIT"
    (ipt,), (out,) = rdf["inputs"], rdf["outputs"]
    assert ipt["id"] == "raw" and out["id"] == "sr"
    assert [a.get("id", a["type"]) for a in ipt["axes"]] == ["batch", "y", "x", "channel"]
    assert ipt["axes"][3]["channel_names"][:2] == ["a0p0", "a0p1"] and len(ipt["axes"][3]["channel_names"]) == 15
    assert ipt["axes"][1]["size"] == {"min": 32, "step": 16} and ipt["axes"][1]["concatenable"] is True
    assert out["axes"][1]["size"] == {"tensor_id": "raw", "axis_id": "y"}
    assert (ipt["axes"][1]["scale"], out["axes"][1]["scale"]) == (4.0, 2.0)  # 2x for the spec and for JDLL
    assert out["axes"][1]["halo"] == 24 and ipt["pad"] == {"mode": "symmetric"}
    # the form JDLL 0.6.1 reads: documentation and covers as file names (format 0.5.10), an id
    assert rdf["format_version"] == "0.5.10" and rdf["documentation"] == "documentation.md"
    assert rdf["covers"] == ["cover.png"] and rdf["id"] == Path(package).name.split(".")[0]
    assert [p["id"] for p in ipt["preprocessing"]] == ["ensure_dtype", "scale_range", "ensure_dtype"]
    assert ipt["preprocessing"][1]["kwargs"]["axes"] == ["channel", "y", "x"]
    w = rdf["weights"]
    assert "parent" not in w["keras_hdf5"]
    assert w["onnx"]["parent"] == w["tensorflow_saved_model_bundle"]["parent"] == "keras_hdf5"
    assert w["onnx"]["opset_version"] == 17
    dij = rdf["config"]["deepimagej"]
    assert dij["allow_tiling"] is True and dij["model_keys"]["tensorflow_siganture_def"].endswith("DEF_KEY")
    assert rdf["config"]["bioimageio"]["reproducibility_tolerance"][0]["absolute_tolerance"] > 0
    assert rdf["config"]["srredsim"]["frames"] == 15 and rdf["training_data"]["type"] == "dataset"
    srr = rdf["config"]["srredsim"]
    assert (srr["architecture"], srr["scale"], srr["input_id"]) == ("sr_redsim", 2, "raw")
    x = np.load(zipfile.ZipFile(package).open("test_input.npy"))
    y = np.load(zipfile.ZipFile(package).open("test_output.npy"))
    assert x.shape == (1, 32, 32, 15) and y.shape == (1, 64, 64, 1) and x.dtype == y.dtype == np.float32
    assert float(y.std()) > 0  # a real test output, not a constant


def test_onnx_files_meet_deepimagej_limits(exported):
    import onnx

    from srredsim.export.onnx_export import onnx_info

    nhwc, nchw = onnx_info(exported.outputs["onnx"]), onnx_info(exported.outputs["onnx_nchw"])
    for info in (nhwc, nchw):
        assert info["opset"] == 17 and info["ir_version"] <= 8
        assert list(info["inputs"]) == ["raw"] and list(info["outputs"]) == ["sr"]
        assert "srredsim" in info["metadata"]
    assert nhwc["inputs"]["raw"] == [None, None, None, 15]
    assert nchw["inputs"]["raw"] == [None, 15, None, None] and nchw["outputs"]["sr"] == [None, 1, None, None]
    onnx.checker.check_model(str(exported.outputs["onnx"]), full_check=True)


def test_savedmodel_signatures(exported):
    from srredsim.export.savedmodel import read_signatures

    info = read_signatures(exported.outputs["savedmodel"])
    assert ["serve"] in info["tags"]
    for sig in ("serve", "serving_default"):
        assert list(info["signatures"][sig]["inputs"]) == ["raw"]
        assert list(info["signatures"][sig]["outputs"]) == ["sr"]
        assert info["signatures"][sig]["inputs"]["raw"][1] == [-1, -1, -1, 15]


# ---- validate ---------------------------------------------------------------------------------
def test_validate_passes_every_check(validated):
    from srredsim.export.checks import failed_checks, format_table

    table = format_table(validated)
    assert not failed_checks(validated), table
    names = by_name(validated)
    for name in ("package", "spec", "dij.onnx.opset", "dij.onnx.ir", "dij.tf.zip", "dij.tf.signature",
                 "dij.channel_names", "dij.processing", "core.keras_hdf5", "core.tensorflow_saved_model_bundle",
                 "core.onnx", "parity.keras~onnx", "parity.keras~savedmodel", "parity.onnx~savedmodel"):
        assert names[name].status == "pass", table
    assert "all" in table.splitlines()[-1] and "passed" in table.splitlines()[-1]


def test_validate_accepts_an_unpacked_folder(unpacked):
    from srredsim.export.checks import failed_checks

    results = lint_only(unpacked)
    assert not failed_checks(results), [(r.name, r.detail) for r in failed_checks(results)]


def test_broken_opset_18_fails_the_opset_lint(run_dir, unpacked):
    from srredsim.export.onnx_export import convert_to_onnx, save_onnx
    from srredsim.runfolder import load_run

    proto = convert_to_onnx(load_run(run_dir).load_model(), opset=18)
    save_onnx(proto, unpacked / "model.onnx")
    rdf = rdf_of(unpacked)
    rdf["weights"]["onnx"]["opset_version"] = 18
    rehash(unpacked, rdf["weights"]["onnx"])
    write_rdf(unpacked, rdf)
    res = by_name(lint_only(unpacked))
    assert res["dij.onnx.opset"].status == "fail" and "opset 18" in res["dij.onnx.opset"].detail
    assert res["spec"].status == "pass"  # the spec allows opset 18; only DeepImageJ does not


def test_broken_missing_channel_name_fails(unpacked):
    rdf = rdf_of(unpacked)
    rdf["inputs"][0]["axes"][3]["channel_names"].pop()
    write_rdf(unpacked, rdf)
    res = by_name(lint_only(unpacked))
    assert res["dij.channel_names"].status == "fail"
    assert "14 channel names" in res["dij.channel_names"].detail
    assert res["spec"].status == "fail"


def test_broken_signature_name_fails(run_dir, unpacked, tmp_path):
    from srredsim.export.safezip import zip_dir
    from srredsim.runfolder import load_run

    model = load_run(run_dir).load_model()

    def rezip(sm):
        zip_dir(sm, unpacked / "tf_saved_model_bundle.zip")
        rdf = rdf_of(unpacked)
        rehash(unpacked, rdf["weights"]["tensorflow_saved_model_bundle"])
        write_rdf(unpacked, rdf)
        return by_name(lint_only(unpacked))

    # Keras' own model.export(): serving_default returns 'output_0', serve returns a bare tensor
    model.export(str(tmp_path / "plain"), verbose=False)
    res = rezip(tmp_path / "plain")
    assert res["dij.tf.signature"].status == "fail"
    assert "serving_default outputs ['output_0'] != tensor ids ['sr']" in res["dij.tf.signature"].detail
    # an endpoint under another name only (ExportArchive aliases the first endpoint as serving_default,
    # so write the SavedModel with TensorFlow directly)
    import tensorflow as tf

    spec = tf.TensorSpec((None, None, None, 15), tf.float32, name="raw")
    fn = tf.function(lambda raw: {"sr": model(raw)}, input_signature=[spec])
    mod = tf.Module()
    mod.model = model
    tf.saved_model.save(mod, str(tmp_path / "predict_only"), signatures={"predict": fn.get_concrete_function()})
    res = rezip(tmp_path / "predict_only")
    assert res["dij.tf.signature"].status == "fail"
    assert "no signature 'serving_default'" in res["dij.tf.signature"].detail


def test_broken_tf_zip_layout_fails(unpacked, tmp_path):
    from srredsim.export.safezip import safe_extract, zip_dir

    nested = tmp_path / "nested"
    safe_extract(unpacked / "tf_saved_model_bundle.zip", nested / "my_model")
    zip_dir(nested, unpacked / "tf_saved_model_bundle.zip")  # the folder itself zipped: one level too deep
    rdf = rdf_of(unpacked)
    rehash(unpacked, rdf["weights"]["tensorflow_saved_model_bundle"])
    write_rdf(unpacked, rdf)
    res = by_name(lint_only(unpacked))
    assert res["dij.tf.zip"].status == "fail" and "my_model/saved_model.pb" in res["dij.tf.zip"].detail


def test_broken_processing_op_fails(unpacked):
    rdf = rdf_of(unpacked)
    rdf["outputs"][0]["postprocessing"].insert(0, {"id": "softmax", "kwargs": {"axis": "channel"}})
    write_rdf(unpacked, rdf)
    res = by_name(lint_only(unpacked))
    assert res["dij.processing"].status == "fail" and "softmax" in res["dij.processing"].detail


def test_truncated_zip_fails_validate_and_cli(package, tmp_path, capsys):
    from srredsim.cli import main

    bad = tmp_path / "truncated.zip"
    data = package.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    res = lint_only(bad)
    assert [r.name for r in res] == ["package"] and res[0].status == "fail"
    assert "truncated or corrupt" in res[0].detail
    assert main(["validate", str(bad), "--no-core", "--no-parity"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "package" in captured.err


# ---- safety -----------------------------------------------------------------------------------
def _zip_with(path: Path, name: str, data: bytes = b"x", mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("rdf.yaml", "type: model\n")
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize("name, mode, reason", [
    ("../evil.txt", None, "outside the target folder"),
    ("a/../../evil.txt", None, "outside the target folder"),
    ("/etc/evil.txt", None, "absolute path"),
    ("..\\evil.txt", None, "backslash"),
    ("link", stat.S_IFLNK | 0o777, "symbolic link"),
])
def test_zip_slip_is_refused(tmp_path, name, mode, reason):
    from srredsim.export.safezip import safe_extract
    from srredsim.runtime import open_model

    z = _zip_with(tmp_path / "evil.zip", name, mode=mode)
    with pytest.raises(SrredsimError, match=reason.split()[0]):
        safe_extract(z, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not Path("/etc/evil.txt").exists()
    with pytest.raises(SrredsimError, match="unsafe"):
        open_model(z)
    res = lint_only(z)
    assert res[0].name == "package" and res[0].status == "fail" and "unsafe" in res[0].detail


def test_corrupt_member_is_a_clear_error(tmp_path):
    from srredsim.export.safezip import safe_extract

    z = tmp_path / "c.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rdf.yaml", "a" * 10000)
    data = bytearray(z.read_bytes())
    data[60:80] = b"\xff" * 20  # damage the compressed stream, keep the directory
    z.write_bytes(bytes(data))
    with pytest.raises(SrredsimError, match="corrupt"):
        safe_extract(z, tmp_path / "out")


def test_run_without_weights_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    from srredsim.config import RunConfig
    from srredsim.export.api import export_run
    from srredsim.runfolder import save_run_skeleton

    run = tmp_path / "empty"
    save_run_skeleton(run, RunConfig.from_dict({"model": {"filters": 4, "depth": 1}}))
    before = sorted(run.iterdir())
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # without -o an export goes to the current folder, never into the run folder
    with pytest.raises(SrredsimError, match="no weights"):
        export_run(run, "bioimageio")
    assert sorted(run.iterdir()) == before and list(work.iterdir()) == []


def test_default_export_goes_to_the_current_folder_not_the_run(run_dir, tmp_path, monkeypatch):
    from srredsim.export.api import default_output, export_run

    assert default_output("bioimageio", "SR-REDSIM") == Path("sr-redsim.bioimageio.zip")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(run_dir) for p in Path(run_dir).rglob("*"))
    result = export_run(run_dir, "onnx", verify=False)
    assert result.outputs["onnx"].resolve().parent == tmp_path.resolve()
    assert sorted(p.relative_to(run_dir) for p in Path(run_dir).rglob("*")) == before


def test_wrong_input_channels_is_refused(tmp_path, run_dir):
    from srredsim.config import RunConfig
    from srredsim.export.api import check_model_io, export_run
    from srredsim.models import build_sr_redsim

    # weights of a 15-channel network under a config that says 3 x 3 = 9 frames
    run = tmp_path / "nine"
    shutil.copytree(run_dir, run)
    cfg = RunConfig.load(run)
    cfg = cfg.with_overrides({"optics.phases": 3, "model.in_channels": 9})
    cfg.save(run)
    with pytest.raises(SrredsimError, match="cannot load weights"):
        export_run(run, "onnx")
    with pytest.raises(SrredsimError, match="9 input channels"):
        check_model_io(build_sr_redsim(9, 4, 1), RunConfig.from_dict({"model": {"filters": 4, "depth": 1}}))


def test_existing_output_refused_unless_overwrite_and_failure_leaves_nothing(run_dir, tmp_path, monkeypatch):
    from srredsim.cli import main
    from srredsim.export import onnx_export

    out = tmp_path / "m.onnx"
    assert main(["export", str(run_dir), "--format", "onnx", "-o", str(out)]) == 0
    first = out.read_bytes()
    assert main(["export", str(run_dir), "--format", "onnx", "-o", str(out)]) == 2
    assert out.read_bytes() == first
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # usual permissions, not mkstemp's
    assert main(["export", str(run_dir), "--format", "onnx", "-o", str(out), "--overwrite"]) == 0

    def boom(*a, **k):
        raise SrredsimError("conversion exploded")

    monkeypatch.setattr(onnx_export, "convert_to_onnx", boom)
    target = tmp_path / "sub" / "all"
    assert main(["export", str(run_dir), "--format", "all", "-o", str(target)]) == 2
    assert not target.exists() and not (tmp_path / "sub").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


# ---- engines ----------------------------------------------------------------------------------
def test_all_engines_and_artifacts_agree_with_the_run(run_dir, exported, package):
    from srredsim.config import RunConfig
    from srredsim.export.testdata import synthetic_raw_stack
    from srredsim.predict import predict_stack
    from srredsim.runtime import open_model

    cfg = RunConfig.load(run_dir)
    raw = synthetic_raw_stack(cfg.optics, 40, seed=3)
    ref_art = open_model(run_dir, "keras", "fp32")
    ref = predict_stack(ref_art.predict_fn, raw, ref_art.normalization)
    assert ref.shape == (80, 80) and ref.std() > 0
    cases = [(run_dir, "onnx"), (run_dir, "savedmodel"), (run_dir, "openvino"), (package, "auto"),
             (package, "keras"), (package, "savedmodel"), (package, "openvino"), (exported.outputs["onnx"], "auto"),
             (exported.outputs["onnx_nchw"], "auto"), (exported.outputs["onnx_nchw"], "openvino"),
             (exported.outputs["savedmodel"], "auto")]
    for path, engine in cases:
        with open_model(path, engine, "fp32") as art:
            assert art.frames == 15 and art.normalization == cfg.normalization
            assert art.pixel_size_um == cfg.optics.pixel_size_um and art.halo == ref_art.halo
            assert art.size_multiple == 1
            y = predict_stack(art.predict_fn, raw, art.normalization)
            assert np.max(np.abs(y - ref)) <= 1e-4, (path, engine, art.engine)
            # tiled prediction through the artifact matches too
            yt = predict_stack(art.predict_fn, raw, art.normalization, tile=36, halo=art.halo, blend=2)
            assert np.max(np.abs(yt - ref)) <= 1e-3
    assert not (run_dir / "export_cache").exists()  # conversions live in the per-user cache
    with open_model(package, precision="fp32") as art:
        assert art.engine in ("onnx", "openvino")
    with pytest.raises(SrredsimError, match="cannot run on the keras engine"):
        open_model(exported.outputs["onnx"], "keras")
    with pytest.raises(SrredsimError, match="unknown engine"):
        open_model(package, "torch")


def test_package_reloads_with_bioimageio_core(package, monkeypatch, tmp_path):
    from bioimageio.core import create_prediction_pipeline, load_description, predict
    from bioimageio.core.digest_spec import create_sample_for_model

    monkeypatch.chdir(tmp_path)  # core unzips TF weights into the working directory
    descr = load_description(str(package), perform_io_checks=True)
    x = np.load(zipfile.ZipFile(package).open("test_input.npy"))
    expected = np.load(zipfile.ZipFile(package).open("test_output.npy"))
    for wf in ("onnx", "tensorflow_saved_model_bundle"):
        pp = create_prediction_pipeline(bioimageio_model=descr, weight_format=wf)  # predict() enters it
        sample = create_sample_for_model(descr, inputs={"raw": x}, sample_id="t")
        with pp:
            exact = pp.predict_sample_without_blocking(sample, skip_input_padding=True, skip_output_cropping=True)
        y = exact.members["sr"].data.to_numpy()
        assert y.shape == expected.shape and np.max(np.abs(y - expected)) <= 1e-4, wf
        # predict() pads the input by the halo *before* normalising (core's choice): same image, the
        # statistics shift slightly and the borders see padding instead of the image edge
        y2 = predict(model=pp, inputs={"raw": x}).members["sr"].data.to_numpy()
        assert y2.shape == expected.shape
        h = 2 * 12
        assert np.max(np.abs(y2 - expected)[:, h:-h, h:-h]) <= 0.02 * float(np.abs(expected).max())


def test_metadata_from_a_foreign_rdf():
    from srredsim.runtime.package import metadata_from_rdf

    rdf = {"inputs": [{"axes": [{"type": "batch"}, {"type": "space", "id": "y", "size": {"min": 64, "step": 32}},
                                {"type": "space", "id": "x", "size": {"min": 64, "step": 32}},
                                {"type": "channel", "channel_names": [f"c{i}" for i in range(9)]}],
                       "preprocessing": [{"id": "scale_linear", "kwargs": {"gain": 0.01, "offset": -1.0}}]}],
           "outputs": [{"axes": [{"type": "batch"}, {"type": "space", "id": "y", "halo": 16}],
                        "postprocessing": [{"id": "scale_linear", "kwargs": {"gain": 500.0, "offset": 10.0}}]}]}
    meta = metadata_from_rdf(rdf)
    n = meta["normalization"]
    assert meta["frames"] == 9 and meta["size_multiple"] == 32 and meta["halo"] == 8
    assert n.mode == "global" and n.x_min == pytest.approx(100.0) and n.x_max == pytest.approx(200.0)
    assert n.y_min == pytest.approx(10.0) and n.y_max == pytest.approx(510.0)
    rdf["inputs"][0]["preprocessing"] = [{"id": "zero_mean_unit_variance", "kwargs": {}}]
    with pytest.raises(SrredsimError, match="cannot be reproduced"):
        metadata_from_rdf(rdf)


def test_global_normalization_package_validates(tmp_path):
    from srredsim.config import RunConfig
    from srredsim.export.api import export_run
    from srredsim.export.checks import failed_checks, format_table
    from srredsim.export.validate import validate_package
    from srredsim.runtime import open_model

    run = make_tiny_run(tmp_path / "glob", normalization={"mode": "global", "x_min": 100.0, "x_max": 400.0,
                                                          "y_min": 0.0, "y_max": 2000.0},
                        depth=1, positive_biases=True)
    pkg = export_run(run, "bioimageio", tmp_path / "g.bioimageio.zip", test_size=32).outputs["bioimageio"]
    rdf = yaml.safe_load(zipfile.ZipFile(pkg).read("rdf.yaml"))
    assert [p["id"] for p in rdf["inputs"][0]["preprocessing"]] == ["ensure_dtype", "scale_linear", "ensure_dtype"]
    assert [p["id"] for p in rdf["outputs"][0]["postprocessing"]] == ["scale_linear", "ensure_dtype"]
    results = validate_package(pkg, weight_formats=("onnx",), parity=False)
    assert not failed_checks(results), format_table(results)
    with open_model(pkg) as art:
        assert art.normalization == RunConfig.load(run).normalization


def test_validate_jvm_without_java_is_one_failed_row_that_says_what_to_install(package, monkeypatch, tmp_path):
    from srredsim.export.validate import _jvm_checks

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("SRREDSIM_JVM_JAR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    (row,) = _jvm_checks(package)
    assert row.name == "jvm" and row.status == "fail" and "Java 17" in row.detail


@pytest.mark.slow
def test_full_size_model_exports_and_validates(tmp_path, capsys):
    """The paper's network (64 filters, depth 10, random weights): export all + validate, timed."""
    import time

    from srredsim.export.api import export_run
    from srredsim.export.checks import failed_checks, format_table
    from srredsim.export.validate import validate_package

    run = make_tiny_run(tmp_path / "full", filters=64, depth=10, positive_biases=True)
    t = time.perf_counter()
    result = export_run(run, "all", tmp_path / "out")
    t_export = time.perf_counter() - t
    t = time.perf_counter()
    rows = validate_package(result.outputs["bioimageio"])
    t_validate = time.perf_counter() - t
    with capsys.disabled():
        print(f"\nfull-size export {t_export:.1f} s ({result.summary()}); validate {t_validate:.1f} s")
    assert not failed_checks(rows), format_table(rows)
    rdf = yaml.safe_load(zipfile.ZipFile(result.outputs["bioimageio"]).read("rdf.yaml"))
    assert rdf["config"]["bioimageio"]["model_parameter_count"] == 1_560_257
    assert rdf["inputs"][0]["axes"][1]["size"] == {"min": 112, "step": 16}
    assert rdf["outputs"][0]["axes"][1]["halo"] == 96


@pytest.mark.parametrize("metadata, message", [
    ({"name": "x"}, "model name"),
    ({"name": "SR/REDSIM model"}, "not '/'"),
    ({"license": "Not-A-License"}, "SPDX"),
    ({"authors": ["A/B"]}, "author"),
])
def test_bad_metadata_is_refused_before_any_work(run_dir, tmp_path, metadata, message):
    from srredsim.export.api import export_run

    with pytest.raises(SrredsimError, match=message):
        export_run(run_dir, "bioimageio", tmp_path / "m.bioimageio.zip", metadata=metadata)
    assert list(tmp_path.iterdir()) == []
