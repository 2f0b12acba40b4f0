package org.srredsim.jvm;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The reproducibility test DeepImageJ's engine library amounts to: test inputs from the package,
 * pre-processing, the engine, post-processing, and comparison with the package's test outputs
 * within the RDF tolerance (bioimageio.core's rule: an element is mismatched when
 * |actual - expected| > atol + rtol * |expected|; at most mismatched_elements_per_million may be).
 */
public final class Check {
    private Check() {}

    /** One engine's result, printed as a human line and a JSON line. */
    public static Map<String, Object> result(String engine, String format, String status, String detail) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("kind", "check");
        r.put("engine", engine);
        r.put("weights_format", format);
        r.put("status", status);
        r.put("ok", status.equals("passed"));
        r.put("detail", detail);
        return r;
    }

    static String message(Throwable e) {
        Throwable t = e;
        StringBuilder sb = new StringBuilder();
        while (t != null) {
            if (sb.length() > 0) sb.append(" <- ");
            String m = t.getMessage();
            sb.append(t.getClass().getSimpleName()).append(m != null ? ": " + m.trim() : "");
            if (t.getCause() == t) break;
            t = t.getCause();
        }
        return sb.toString();
    }

    public static List<Tensor> testInputs(ModelPackage pkg) throws Exception {
        List<Tensor> ins = new ArrayList<>();
        for (Rdf.TensorDescr d : pkg.rdf.inputs) {
            if (d.testTensor == null) throw new IllegalArgumentException("input " + d.id + " has no test tensor");
            Tensor t = Npy.read(pkg.rdf.resolve(d.testTensor));
            checkRank(t, d, "test input");
            t.axes = d.axisIds();
            ins.add(t);
        }
        return ins;
    }

    static void checkRank(Tensor t, Rdf.TensorDescr d, String what) {
        if (t.rank() != d.axes.size()) {
            throw new IllegalArgumentException(what + " " + d.id + " has shape " + Arrays.toString(t.shape) + " but rdf.yaml gives "
                    + d.axes.size() + " axes " + d.axisIds());
        }
    }

    /** Pre-process inputs, run the engine, post-process outputs (the DeepImageJ pipeline). */
    public static List<Tensor> predict(ModelPackage pkg, Engine engine, List<Tensor> inputs, Path saveDir, String prefix)
            throws Exception {
        Rdf rdf = pkg.rdf;
        Map<String, Tensor> raw = new LinkedHashMap<>();
        for (int i = 0; i < inputs.size(); i++) raw.put(rdf.inputs.get(i).id, inputs.get(i));
        List<Tensor> pre = new ArrayList<>();
        List<String> inIds = new ArrayList<>();
        for (int i = 0; i < inputs.size(); i++) {
            Rdf.TensorDescr d = rdf.inputs.get(i);
            Tensor t = Processing.apply(d.processing, inputs.get(i), raw);
            pre.add(t);
            inIds.add(d.id);
            if (saveDir != null) Npy.write(saveDir.resolve(prefix + "-" + d.id + "-preprocessed.npy"), t);
        }
        List<String> outIds = new ArrayList<>();
        for (Rdf.TensorDescr d : rdf.outputs) outIds.add(d.id);
        List<Tensor> outs = engine.run(pre, inIds, outIds);
        List<Tensor> post = new ArrayList<>();
        Map<String, Tensor> all = new LinkedHashMap<>(raw);
        for (int i = 0; i < outs.size(); i++) {
            Rdf.TensorDescr d = rdf.outputs.get(i);
            Tensor t = outs.get(i);
            checkRank(t, d, "model output");
            t.axes = d.axisIds();
            if (saveDir != null) Npy.write(saveDir.resolve(prefix + "-" + d.id + "-model.npy"), t);
            all.put(d.id, t);
            Tensor p = Processing.apply(d.processing, t, all);
            if (saveDir != null) Npy.write(saveDir.resolve(prefix + "-" + d.id + ".npy"), p);
            post.add(p);
        }
        return post;
    }

    /** Run the test of one weights format; never throws. */
    public static Map<String, Object> run(ModelPackage pkg, String format, Path saveDir) {
        String engineName = ModelPackage.engineOf(format);
        Map<String, Object> r = result(engineName, format, "error", "");
        long t0 = System.nanoTime();
        Engine engine = null;
        try {
            List<Tensor> inputs = testInputs(pkg);
            try {
                engine = pkg.load(format);
            } catch (Throwable e) {
                r.put("status", "failed");
                r.put("ok", false);
                r.put("stage", "load");
                r.put("detail", "the engine cannot load the " + format + " weights: " + message(e) + opsetHint(pkg, format));
                return r;
            }
            r.put("engine_version", engine.version());
            r.put("load_seconds", (System.nanoTime() - t0) / 1e9);
            long t1 = System.nanoTime();
            List<Tensor> outs;
            try {
                outs = predict(pkg, engine, inputs, saveDir, engineName);
            } catch (Throwable e) {
                r.put("status", "failed");
                r.put("ok", false);
                r.put("stage", "run");
                r.put("detail", "running the model failed: " + message(e));
                return r;
            }
            r.put("run_seconds", (System.nanoTime() - t1) / 1e9);
            List<Object> perOutput = new ArrayList<>();
            boolean ok = true;
            StringBuilder detail = new StringBuilder();
            double worst = 0;
            for (int i = 0; i < outs.size(); i++) {
                Rdf.TensorDescr d = pkg.rdf.outputs.get(i);
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("output", d.id);
                Tensor actual = outs.get(i);
                o.put("shape", actual.shape);
                if (d.testTensor == null) {
                    ok = false;
                    detail.append("output ").append(d.id).append(" has no test tensor; ");
                    perOutput.add(o);
                    continue;
                }
                Tensor expected = Npy.read(pkg.rdf.resolve(d.testTensor));
                if (!Arrays.equals(actual.shape, expected.shape)) {
                    ok = false;
                    detail.append("output ").append(d.id).append(" has shape ").append(Arrays.toString(actual.shape))
                            .append(", test output ").append(Arrays.toString(expected.shape)).append("; ");
                    perOutput.add(o);
                    continue;
                }
                Rdf.Tolerance tol = pkg.rdf.tolerance(format, d.id);
                double maxAbs = 0;
                double maxRef = 0;
                long mismatched = 0;
                boolean nonFinite = false;
                for (int k = 0; k < actual.data.length; k++) {
                    double a = actual.data[k];
                    double b = expected.data[k];
                    if (!Double.isFinite(a)) nonFinite = true;
                    double diff = Math.abs(a - b);
                    if (diff > maxAbs || Double.isNaN(diff)) maxAbs = Double.isNaN(diff) ? Double.POSITIVE_INFINITY : diff;
                    maxRef = Math.max(maxRef, Math.abs(b));
                    if (!(diff <= tol.atol + tol.rtol * Math.abs(b))) mismatched++;
                }
                double ppm = mismatched * 1e6 / actual.data.length;
                boolean pass = !nonFinite && ppm <= tol.mismatchedPerMillion;
                ok &= pass;
                worst = Math.max(worst, maxAbs);
                o.put("max_abs_diff", maxAbs);
                o.put("max_abs_expected", maxRef);
                o.put("mismatched_elements", mismatched);
                o.put("mismatched_ppm", ppm);
                o.put("tolerance", Map.of("relative_tolerance", tol.rtol, "absolute_tolerance", tol.atol,
                        "mismatched_elements_per_million", tol.mismatchedPerMillion));
                o.put("passed", pass);
                perOutput.add(o);
                detail.append(String.format("%s: max |diff| %.3g (max |expected| %.3g), %d mismatched (%.1f ppm; allowed %s); ",
                        d.id, maxAbs, maxRef, mismatched, ppm, tol));
            }
            r.put("outputs", perOutput);
            r.put("max_abs_diff", worst);
            r.put("status", ok ? "passed" : "failed");
            r.put("ok", ok);
            r.put("detail", detail.toString().replaceAll("; $", ""));
            return r;
        } catch (Throwable e) {
            r.put("status", "error");
            r.put("ok", false);
            r.put("detail", message(e));
            return r;
        } finally {
            if (engine != null) engine.close();
            r.put("seconds", (System.nanoTime() - t0) / 1e9);
        }
    }

    static String opsetHint(ModelPackage pkg, String format) {
        if (!format.equals(ModelPackage.ONNX)) return "";
        Object opset = pkg.rdf.weights.get(format).get("opset_version");
        if (opset instanceof Number && ((Number) opset).intValue() > 17) {
            return " (rdf.yaml declares opset " + opset + "; DeepImageJ's newest ONNX Runtime, 1.13.1, runs opset <= 17 and IR <= 8)";
        }
        return " (DeepImageJ's newest ONNX Runtime, 1.13.1, runs opset <= 17 and IR <= 8)";
    }
}
