"""The SavedModel export, checked the way TF Serving would use it.

A fresh Python process that imports only tensorflow loads the export and calls every signature;
its outputs equal hved_tf's own inference on the same input. The graph holds only ops that
TensorFlow's C++ runtime registers (no Python function ops), and saved_model_cli lists the
signatures.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from hved_tf.serving.export import SIGNATURES, export_model
from hved_tf.config import ExportConfig, InferenceOptions, PredictConfig
from conftest import EXPORT_OPTIONS, segment
from hved_tf.inference.loading import keras_segmenter, load_trained, open_segmenter
from hved_tf.inference.segmenter import model_facts
from hved_tf.modalities import LABEL_CONVENTIONS

# Forces several 32^3 windows (the tiny run's patch) on a 37x29x33 volume: the settings of
# the session's tiny export (conftest.tiny_export).
OPTIONS = InferenceOptions(**EXPORT_OPTIONS)
SHAPE = (37, 29, 33)
PYFUNC_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}

FRESH = textwrap.dedent("""
    import importlib.abc
    import sys

    class Block(importlib.abc.MetaPathFinder):
        # As in a TF Serving image: our package cannot be imported.
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "hved_tf":
                raise ImportError(f"blocked: {name}")
            return None

    sys.meta_path.insert(0, Block())
    import numpy as np
    import tensorflow as tf
    # TensorFlow itself imports parts of Keras when it is installed; loading the export must
    # not import any more of it (no Keras object is revived).
    keras_before = {m for m in sys.modules if m.startswith("keras")}
    export, inputs, outputs = sys.argv[1:4]
    data = np.load(inputs)
    loaded = tf.saved_model.load(export)
    sigs = loaded.signatures
    out = {}
    for key, value in sigs["serving_default"](image=tf.constant(data["window"]),
                                               mask=tf.constant(data["wmask"])).items():
        out["default/" + key] = value.numpy()
    for key, value in sigs["serving_samples"](image=tf.constant(data["window"]),
                                               mask=tf.constant(data["wmask"]),
                                               num_samples=tf.constant(1)).items():
        out["samples1/" + key] = value.numpy()
    for key, value in sigs["segment_volume"](image=tf.constant(data["volume"]),
                                              mask=tf.constant(data["vmask"])).items():
        out["volume/" + key] = value.numpy()
    for key, value in sigs["segment_raw"](image=tf.constant(data["raw"]),
                                           mask=tf.constant(data["rmask"]),
                                           spacing=tf.constant([1.0, 1.0, 1.0])).items():
        out["raw/" + key] = value.numpy()
    for key, value in sigs["segment_raw"](image=tf.constant(data["coarse"]),
                                           mask=tf.constant(data["rmask"]),
                                           spacing=tf.constant([1.0, 1.0, 2.0])).items():
        out["coarse/" + key] = value.numpy()
    np.savez(outputs, **out)
    keras_after = {m for m in sys.modules if m.startswith("keras")}
    print("MODULES", sorted(keras_after - keras_before), "hved_tf" in sys.modules)
""")


@pytest.fixture(scope="module")
def exported(tiny_run, tiny_export):
    """(the tiny run loaded, its session export with OPTIONS)."""
    return load_trained(tiny_run), tiny_export


def test_fresh_process_matches_hved_tf_inference(exported, tmp_path):
    trained, path = exported
    rng = np.random.default_rng(0)
    volume = rng.normal(size=SHAPE + (4,)).astype(np.float32)
    vmask = np.array([1, 0, 1, 1], np.float32)
    window = rng.normal(size=(2, 24, 16, 32, 4)).astype(np.float32)
    wmask = np.array([[1, 1, 1, 1], [0, 1, 0, 1]], np.float32)
    # Raw RAS files for segment_raw, against hved_tf.predict on the same files.
    import nibabel as nib

    from hved_tf.data.synthetic import make_phantom
    from hved_tf.modalities import MODALITIES
    from hved_tf.io.datasets import subject_from_files
    from hved_tf.prediction.app import predict_subject
    phantoms, _ = make_phantom((41, 36, 38), seed=[6, 1])
    rmask = np.array([0, 1, 1, 1], np.float32)
    raw = np.stack([phantoms[m] * rmask[i] for i, m in enumerate(MODALITIES)], -1)
    files, coarse = {}, {}
    for i, m in enumerate(MODALITIES):
        if rmask[i]:
            files[m] = tmp_path / f"{m}.nii.gz"
            nib.save(nib.Nifti1Image(phantoms[m], np.diag([1.0, 1.0, 1.0, 1.0])), str(files[m]))
            # every other slice: 2 mm along z, which segment_raw resamples to the model's 1 mm
            coarse[m] = tmp_path / f"{m}_2mm.nii.gz"
            nib.save(nib.Nifti1Image(phantoms[m][:, :, ::2], np.diag([1.0, 1.0, 2.0, 1.0])),
                     str(coarse[m]))
    np.savez(tmp_path / "in.npz", volume=volume, vmask=vmask, window=window, wmask=wmask,
             raw=raw.astype(np.float32), coarse=raw[:, :, ::2].astype(np.float32), rmask=rmask)
    done = subprocess.run([sys.executable, "-c", FRESH, str(path), str(tmp_path / "in.npz"),
                           str(tmp_path / "out.npz")], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MODULES [] False" in done.stdout      # no more of keras, none of hved_tf
    out = dict(np.load(tmp_path / "out.npz"))

    expected = segment(trained.model, volume, vmask, OPTIONS, model_facts(trained))
    assert expected["window"] == (32, 32, 32)           # several windows were stitched
    values = np.asarray(LABEL_CONVENTIONS["brats2018"])
    np.testing.assert_allclose(out["volume/seg_probabilities"], expected["probabilities"],
                               atol=1e-5)
    np.testing.assert_array_equal(out["volume/seg_labels"], values[expected["labels"]])
    np.testing.assert_allclose(out["volume/uncertainty"], expected["entropy"], atol=1e-5)
    np.testing.assert_allclose(out["volume/variance"], expected["variance"], atol=1e-5)
    np.testing.assert_allclose(out["volume/recon"], expected["recon"], atol=1e-5)

    predict_subject(keras_segmenter(trained, OPTIONS), subject_from_files(files), tmp_path / "pred",
                    PredictConfig(probabilities=True))
    read = lambda name: np.asanyarray(nib.load(str(tmp_path / "pred" / name)).dataobj)  # noqa
    np.testing.assert_array_equal(out["raw/seg_labels"], read("seg.nii.gz"))
    np.testing.assert_allclose(out["raw/uncertainty"], read("uncertainty.nii.gz"), atol=1e-5)
    np.testing.assert_allclose(out["raw/seg_probabilities"][..., 3],
                               read("prob_enhancing.nii.gz"), atol=1e-5)
    np.testing.assert_allclose(out["raw/recon"][..., 0], read("synth_T1.nii.gz"), atol=1e-5)
    # At 2 mm along z: resampled to 1 mm in the graph (float32 matrices) and on the host
    # (SciPy, float64), the outputs brought back to the 2 mm grid by both.
    report = predict_subject(keras_segmenter(trained, OPTIONS), subject_from_files(coarse),
                             tmp_path / "pred2mm", PredictConfig(probabilities=True))
    assert report["inference"]["resampled"]
    read = lambda name: np.asanyarray(nib.load(str(tmp_path / "pred2mm" / name)).dataobj)  # noqa
    assert out["coarse/seg_labels"].shape == (41, 36, 19)
    np.testing.assert_allclose(out["coarse/seg_probabilities"][..., 3],
                               read("prob_enhancing.nii.gz"), atol=1e-4)
    np.testing.assert_allclose(out["coarse/recon"][..., 0], read("synth_T1.nii.gz"), atol=1e-4)
    agree = np.mean(out["coarse/seg_labels"] == read("seg.nii.gz"))
    assert agree > 0.999, agree

    # Compared with the graph (tf.function) forward, as hved_tf.predict runs it: eager mode
    # takes other oneDNN kernels (differences of a few 1e-5).
    infer = tf.function(lambda x, m, n: trained.model.infer({"image": x, "mask": m},
                                                              num_samples=n))
    model_out = infer(window, wmask, 3)
    np.testing.assert_allclose(out["default/seg_probabilities"],
                               model_out["seg_probabilities"], atol=1e-5)
    # The two graphs sum the norms' statistics in other orders (one ulp apart), which every
    # later layer carries: the reconstructions up to 2.6e-5 apart here.
    np.testing.assert_allclose(out["default/recon"], model_out["recon"], atol=5e-5)
    mean_out = infer(window, wmask, 1)
    np.testing.assert_allclose(out["samples1/seg_probabilities"],
                               mean_out["seg_probabilities"], atol=1e-5)
    assert out["samples1/variance"].max() == 0.0


def test_graph_has_only_ops_the_cpp_runtime_knows(exported):
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    _, path = exported
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((path / "saved_model.pb").read_bytes())
    ops = set()
    for graph in proto.meta_graphs:
        ops |= {n.op for n in graph.graph_def.node}
        for function in graph.graph_def.library.function:
            ops |= {n.op for n in function.node_def}
    functions = {f.signature.name for g in proto.meta_graphs
                 for f in g.graph_def.library.function}
    assert not ops & PYFUNC_OPS
    unknown = sorted(op for op in ops - functions if op_def_registry.get(op) is None)
    assert not unknown, unknown
    assert "Conv3D" in ops and {"While", "StatelessWhile"} & ops


def test_saved_model_cli_lists_the_signatures(exported):
    _, path = exported
    done = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli",
                           "show", "--dir", str(path), "--all"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in done.stdout
    assert "seg_labels" in done.stdout and "num_samples" in done.stdout


def test_bad_requests_fail_clearly(exported):
    _, path = exported
    loaded = tf.saved_model.load(str(path))
    volume = tf.random.normal((20, 20, 20, 4))
    with pytest.raises(tf.errors.InvalidArgumentError, match="no modality present"):
        loaded.signatures["segment_volume"](image=volume, mask=tf.zeros([4]))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        loaded.signatures["segment_volume"](image=volume[..., :3], mask=tf.ones([4]))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        loaded.signatures["serving_default"](image=volume, mask=tf.ones([1, 4]))


def test_export_refuses_an_existing_version_and_a_model_without_landmarks(exported, tmp_path):
    import dataclasses

    trained, path = exported
    with pytest.raises(ValueError, match="exists already"):
        export_model(trained, ExportConfig(export_dir=str(path.parent),
                                           version=int(path.name)))
    with pytest.raises(ValueError, match="no histogram landmarks"):
        export_model(dataclasses.replace(trained, landmarks=None),
                     ExportConfig(export_dir=str(tmp_path / "none")))
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())


def test_serving_client_against_a_grpc_test_double(exported, tmp_path):
    """hved-serve-client (hved_tf.serve_client) end to end against an in-process
    PredictionService backed by the SavedModel; its NIfTI outputs equal hved_tf.predict's on the
    same files."""
    from concurrent import futures

    import grpc
    import nibabel as nib
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from hved_tf.data.synthetic import make_phantom
    from hved_tf.io.datasets import subject_from_files
    from hved_tf.prediction.app import predict_subject

    trained, path = exported
    loaded = tf.saved_model.load(str(path))

    class Double(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
            inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            response = predict_pb2.PredictResponse()
            for key, value in signature(**inputs).items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    limit = [("grpc.max_send_message_length", 1 << 30),
             ("grpc.max_receive_message_length", 1 << 30)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=limit)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Double(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        volumes, _ = make_phantom((33, 38, 35), seed=[4, 2])
        # LAS: sent in RAS, written back as LAS; 2 mm along z: the served graph resamples to
        # the model's 1 mm and back, as predict does on the host
        affine = np.diag([-1.0, 1.0, 2.0, 1.0])
        files = {}
        for m in ("T1c", "FLAIR"):
            files[m] = tmp_path / f"{m.lower()}.nii.gz"
            nib.save(nib.Nifti1Image(volumes[m], affine), str(files[m]))
        from hved_tf.serve_client import PROGRAM
        code = PROGRAM.call([f"--server=127.0.0.1:{port}", "--model_name=hved",
                            f"--t1c={files['T1c']}", f"--flair={files['FLAIR']}",
                            f"--out_dir={tmp_path / 'served'}"])
        assert code == 0
    finally:
        server.stop(None)
    options = OPTIONS
    predict_subject(keras_segmenter(trained, options), subject_from_files(files), tmp_path / "local")
    for name in ("seg.nii.gz", "uncertainty.nii.gz", "synth_T1.nii.gz", "synth_T2.nii.gz"):
        served = nib.load(str(tmp_path / "served" / name))
        local = nib.load(str(tmp_path / "local" / name))
        np.testing.assert_allclose(served.affine, affine)
        a, b = np.asanyarray(served.dataobj), np.asanyarray(local.dataobj)
        assert a.shape == b.shape == (33, 38, 35)
        if name == "seg.nii.gz":      # SciPy's float64 against the graph's float32 matrices
            assert np.mean(a == b) > 0.999, name
        else:
            np.testing.assert_allclose(a, b, atol=1e-4, err_msg=name)


def test_predict_accepts_an_export(exported, tmp_path):
    """hved_tf.predict --model <export> writes what it writes from the run folder."""
    import nibabel as nib

    from hved_tf.data.synthetic import make_phantom
    from hved_tf.io.datasets import subject_from_files
    from hved_tf.prediction.app import predict_subject

    trained, path = exported
    from_export = open_segmenter(path)
    assert from_export.identity["sha256"] == trained.identity["sha256"]
    phantoms, _ = make_phantom((35, 40, 33), seed=[8, 3])
    files = {}
    for m in ("T1", "T2", "FLAIR"):
        files[m] = tmp_path / f"{m}.nii.gz"
        nib.save(nib.Nifti1Image(phantoms[m], np.diag([1.0, -1.0, 1.0, 1.0])), str(files[m]))
    options = OPTIONS
    config = PredictConfig(label_convention="brats2023", probabilities=True)
    predict_subject(keras_segmenter(trained, options), subject_from_files(files), tmp_path / "run",
                    config)
    report = predict_subject(from_export, subject_from_files(files), tmp_path / "export", config)
    assert report["synthesised"] == ["T1c"] and report["label_convention"] == "brats2023"
    for name in ("seg.nii.gz", "uncertainty.nii.gz", "variance.nii.gz", "synth_T1c.nii.gz",
                 "prob_oedema.nii.gz"):
        a = nib.load(str(tmp_path / "run" / name))
        b = nib.load(str(tmp_path / "export" / name))
        np.testing.assert_allclose(a.affine, b.affine)
        np.testing.assert_allclose(np.asanyarray(a.dataobj), np.asanyarray(b.dataobj),
                                   atol=1e-5, err_msg=name)
    # the export records its model's voxel size, and an input at another is resampled to it
    assert from_export.spacing == (1.0, 1.0, 1.0)
    coarse = {}
    for m in ("T1", "T2", "FLAIR"):
        coarse[m] = tmp_path / f"{m}_2mm.nii.gz"
        nib.save(nib.Nifti1Image(phantoms[m][:, :, ::2], np.diag([1.0, -1.0, 2.0, 1.0])),
                 str(coarse[m]))
    reports = [predict_subject(s, subject_from_files(coarse), tmp_path / f"coarse_{k}")
               for k, s in enumerate((keras_segmenter(trained, options), from_export))]
    assert all(r["inference"]["resampled"] for r in reports)
    a, b = (np.asanyarray(nib.load(str(tmp_path / f"coarse_{k}" / "seg.nii.gz")).dataobj)
            for k in range(2))
    assert a.shape == b.shape == (35, 40, 17)
    np.testing.assert_array_equal(a, b)


def test_export_cli(tmp_path, tiny_run, cli):
    """In this process (hved-export as a real process: tests/test_cli.py)."""
    run = tmp_path / "unfinished"
    run.mkdir()
    (run / "run_config.json").write_text((tiny_run / "run_config.json").read_text())
    base = [f"--export_dir={tmp_path / 'models'}"]
    bad = cli("export", *base, f"--model={run}")
    assert bad.code == 2 and "no finished model" in bad.err, bad
    good = cli("export", *base, f"--model={tiny_run}", "--samples=2")
    assert good.code == 0, good
    assert "exported u_hved" in good.out
    assert (tmp_path / "models" / "1" / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["1"]   # no leftovers


@pytest.mark.parametrize("name,options,mask", [
    ("u_hemis", {}, (1, 0, 0, 1)),
    ("unet", {"subset": "T1c+FLAIR"}, (0, 1, 0, 1)),
    ("hemis", {}, (1, 1, 1, 0)),
])
def test_the_baselines_export_too(tmp_path, name, options, mask):
    from conftest import make_run_dir

    trained = load_trained(make_run_dir(tmp_path / name, name=name, **options))
    path = export_model(trained, ExportConfig(export_dir=str(tmp_path / "models"),
                                              inference=OPTIONS))
    loaded = tf.saved_model.load(str(path))
    volume = np.random.default_rng(1).normal(size=(21, 19, 18, 4)).astype(np.float32)
    mask = np.asarray(mask, np.float32)
    out = loaded.signatures["segment_volume"](image=tf.constant(volume), mask=tf.constant(mask))
    expected = segment(trained.model, volume, mask, OPTIONS, model_facts(trained))
    np.testing.assert_allclose(out["seg_probabilities"], expected["probabilities"], atol=1e-5)
    assert float(tf.reduce_max(tf.abs(out["recon"]))) == 0.0       # no synthesis in these
