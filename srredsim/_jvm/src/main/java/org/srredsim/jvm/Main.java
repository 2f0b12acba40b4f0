package org.srredsim.jvm;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Command line of the engine-equivalent DeepImageJ check.
 *
 * <pre>
 * java -jar srredsim-jvm.jar check PACKAGE [--weights onnx,tensorflow_saved_model_bundle] [--save-outputs DIR]
 * java -jar srredsim-jvm.jar predict PACKAGE RAW.tif OUT.tif [--weights FORMAT] [--save-outputs DIR]
 * java -jar srredsim-jvm.jar process pre|post PACKAGE IN.npy OUT.npy  (the RDF's processing only)
 * java -jar srredsim-jvm.jar npy IN.npy OUT.npy          (read and re-write: tests the NPY reader)
 * java -jar srredsim-jvm.jar info
 * </pre>
 *
 * Every result is printed twice: a human line, and a JSON object on a line starting with
 * {@value #PREFIX} for programs (srredsim/export/jvm.py). Exit codes: 0 all passed, 1 a check
 * failed, 2 bad usage or an unreadable package.
 */
public final class Main {
    public static final String PREFIX = "SRREDSIM_JVM_RESULT ";

    private Main() {}

    static void emit(Map<String, Object> r) {
        String status = String.valueOf(r.get("status"));
        String tag = status.equals("passed") ? "PASS" : status.equals("skipped") ? "SKIP" : "FAIL";
        Object version = r.get("engine_version");
        System.out.println("[" + tag + "] " + r.get("kind") + " " + r.get("weights_format")
                + (version != null ? " on " + version : "") + ": " + r.getOrDefault("detail", ""));
        System.out.println(PREFIX + Json.write(r));
        System.out.flush();
    }

    static void usage() {
        System.out.println("usage: java -jar srredsim-jvm.jar check PACKAGE [--weights F1,F2] [--save-outputs DIR]\n"
                + "       java -jar srredsim-jvm.jar predict PACKAGE RAW.tif OUT.tif [--weights F] [--save-outputs DIR]\n"
                + "       java -jar srredsim-jvm.jar process pre|post PACKAGE IN.npy OUT.npy\n"
                + "       java -jar srredsim-jvm.jar npy IN.npy OUT.npy\n"
                + "       java -jar srredsim-jvm.jar info\n"
                + "Runs a bioimage.io package on DeepImageJ's engines (TensorFlow Java 0.5.0 = TF 2.10.1, "
                + "ONNX Runtime Java 1.13.1) with its pre/post-processing; ImageJ " + ij.IJ.getVersion() + ".");
    }

    public static void main(String[] argv) {
        System.setProperty("java.awt.headless", "true");
        int rc;
        try {
            rc = run(argv);
        } catch (IllegalArgumentException e) {
            Map<String, Object> r = Check.result(null, null, "error", Check.message(e));
            r.put("kind", "usage");
            emit(r);
            rc = 2;
        } catch (Throwable e) {
            Map<String, Object> r = Check.result(null, null, "error", Check.message(e));
            r.put("kind", "package");
            emit(r);
            rc = 2;
        }
        System.exit(rc);
    }

    static int run(String[] argv) throws Exception {
        List<String> pos = new ArrayList<>();
        String weights = null;
        Path save = null;
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            if (a.equals("--weights") || a.equals("--save-outputs")) {
                if (i + 1 >= argv.length) throw new IllegalArgumentException(a + " needs a value");
                if (a.equals("--weights")) weights = argv[++i];
                else save = Paths.get(argv[++i]);
            } else if (a.equals("-h") || a.equals("--help") || a.equals("help")) {
                usage();
                return 0;
            } else {
                pos.add(a);
            }
        }
        if (pos.isEmpty()) {
            usage();
            return 2;
        }
        String cmd = pos.get(0);
        switch (cmd) {
            case "info": {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("kind", "info");
                r.put("status", "passed");
                r.put("java", System.getProperty("java.version"));
                r.put("imagej", ij.IJ.getVersion());
                r.put("tensorflow", org.tensorflow.TensorFlow.version());
                r.put("onnxruntime", "1.13.1");
                r.put("detail", "Java " + r.get("java") + ", ImageJ " + r.get("imagej") + ", TensorFlow " + r.get("tensorflow")
                        + ", ONNX Runtime 1.13.1");
                emit(r);
                return 0;
            }
            case "process": {
                // apply input 0's pre-processing (or output 0's post-processing) of a package to an .npy
                if (pos.size() != 5 || !(pos.get(1).equals("pre") || pos.get(1).equals("post"))) {
                    throw new IllegalArgumentException("process needs pre|post PACKAGE IN.npy OUT.npy");
                }
                try (ModelPackage pkg = new ModelPackage(Paths.get(pos.get(2)))) {
                    Rdf.TensorDescr d = pos.get(1).equals("pre") ? pkg.rdf.inputs.get(0) : pkg.rdf.outputs.get(0);
                    Tensor t = Npy.read(Paths.get(pos.get(3)));
                    Check.checkRank(t, d, "tensor");
                    t.axes = d.axisIds();
                    Npy.write(Paths.get(pos.get(4)), Processing.apply(d.processing, t, Map.of(d.id, t)));
                }
                return 0;
            }
            case "npy": {
                if (pos.size() != 3) throw new IllegalArgumentException("npy needs IN.npy OUT.npy");
                Tensor t = Npy.read(Paths.get(pos.get(1)));
                Npy.write(Paths.get(pos.get(2)), t);
                return 0;
            }
            case "check": {
                if (pos.size() != 2) throw new IllegalArgumentException("check needs exactly one PACKAGE (zip or folder)");
                int failed = 0;
                try (ModelPackage pkg = new ModelPackage(Paths.get(pos.get(1)))) {
                    List<String> formats = selectFormats(pkg, weights);
                    for (String f : pkg.rdf.weights.keySet()) {
                        if (ModelPackage.engineOf(f) == null && weights == null) {
                            Map<String, Object> r = Check.result(null, f, "skipped",
                                    f + " weights are not run here: DeepImageJ runs this package through its tensorflow_saved_model_bundle / onnx weights");
                            emit(r);
                        }
                    }
                    for (String f : formats) {
                        Map<String, Object> r = Check.run(pkg, f, save);
                        emit(r);
                        if (!Boolean.TRUE.equals(r.get("ok"))) failed++;
                    }
                }
                return failed == 0 ? 0 : 1;
            }
            case "predict": {
                if (pos.size() != 4) throw new IllegalArgumentException("predict needs PACKAGE RAW.tif OUT.tif");
                try (ModelPackage pkg = new ModelPackage(Paths.get(pos.get(1)))) {
                    List<String> formats = selectFormats(pkg, weights);
                    String f = formats.get(0);
                    Map<String, Object> r;
                    try {
                        r = ImageJRunner.run(pkg, f, Paths.get(pos.get(2)), Paths.get(pos.get(3)), save);
                        r.put("detail", "wrote " + r.get("output") + " " + Json.write(r.get("output_shape"))
                                + ", pixel size " + r.get("pixel_size_out") + " " + r.get("unit"));
                    } catch (Exception e) {
                        r = Check.result(ModelPackage.engineOf(f), f, "failed", Check.message(e));
                        r.put("kind", "predict");
                    }
                    emit(r);
                    return Boolean.TRUE.equals(r.get("ok")) ? 0 : 1;
                }
            }
            default:
                throw new IllegalArgumentException("unknown command '" + cmd + "' (check, predict, process, npy, info)");
        }
    }

    static List<String> selectFormats(ModelPackage pkg, String weights) {
        List<String> out = new ArrayList<>();
        if (weights == null || weights.equals("all")) {
            for (String f : pkg.rdf.weights.keySet()) if (ModelPackage.engineOf(f) != null) out.add(f);
            if (out.isEmpty()) {
                throw new IllegalArgumentException("the package has no weights DeepImageJ runs (tensorflow_saved_model_bundle, "
                        + "onnx); it has " + pkg.rdf.weights.keySet());
            }
            return out;
        }
        for (String f : weights.split(",")) {
            String name = f.trim();
            if (name.equals("tensorflow")) name = ModelPackage.TF;
            if (ModelPackage.engineOf(name) == null) throw new IllegalArgumentException("unknown weights format " + f);
            if (!pkg.rdf.weights.containsKey(name)) throw new IllegalArgumentException("the package has no " + name + " weights");
            out.add(name);
        }
        return out;
    }
}
