package org.srredsim.jvm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The pre/post-processing steps DeepImageJ 3 (JDLL) runs, with the arithmetic of bioimage.io spec
 * 0.5 as implemented in bioimageio.core (proc_ops.py): binarize, clip, ensure_dtype,
 * fixed_zero_mean_unit_variance, scale_linear, scale_range, sigmoid, zero_mean_unit_variance.
 * Statistics are per sample (quantiles: NumPy's "linear" method; std with ddof 0); values stay
 * float32 as in bioimageio.core. Any other step is an error, as it is in DeepImageJ.
 */
public final class Processing {
    public static final List<String> SUPPORTED = List.of("binarize", "clip", "ensure_dtype",
            "fixed_zero_mean_unit_variance", "scale_linear", "scale_range", "sigmoid", "zero_mean_unit_variance");

    private Processing() {}

    /** Apply {@code steps} in order to a copy of {@code t}; {@code tensors} resolves reference_tensor. */
    public static Tensor apply(List<Rdf.Proc> steps, Tensor t, Map<String, Tensor> tensors) {
        Tensor x = t.copy();
        for (Rdf.Proc p : steps) {
            x = applyOne(p, x, tensors);
        }
        return x;
    }

    static Tensor applyOne(Rdf.Proc p, Tensor x, Map<String, Tensor> tensors) {
        Map<String, Object> kw = p.kwargs;
        switch (p.id) {
            case "scale_linear": return scaleLinear(x, kw);
            case "scale_range": return scaleRange(x, kw, tensors);
            case "zero_mean_unit_variance": return zeroMeanUnitVariance(x, kw);
            case "fixed_zero_mean_unit_variance": return fixedZeroMeanUnitVariance(x, kw);
            case "clip": return clip(x, kw);
            case "sigmoid": {
                for (int i = 0; i < x.data.length; i++) x.data[i] = (float) (1.0 / (1.0 + Math.exp(-x.data[i])));
                return x;
            }
            case "binarize": return binarize(x, kw);
            case "ensure_dtype": return ensureDtype(x, kw);
            default:
                throw new IllegalArgumentException("processing step '" + p.id + "' is not supported by DeepImageJ "
                        + "(JDLL runs only " + String.join(", ", SUPPORTED) + ")");
        }
    }

    // ---- helpers ------------------------------------------------------------------------------

    static double num(Object o, double dflt) {
        return o instanceof Number ? ((Number) o).doubleValue() : dflt;
    }

    static double[] nums(Object o) {
        if (o instanceof Number) return new double[] {((Number) o).doubleValue()};
        if (o instanceof List) {
            List<?> l = (List<?>) o;
            double[] out = new double[l.size()];
            for (int i = 0; i < out.length; i++) out[i] = ((Number) l.get(i)).doubleValue();
            return out;
        }
        return null;
    }

    /** Axis ids named by a kwargs "axes" entry (0.5 list of ids or 0.4 letter string), null = all. */
    static List<String> axesIds(Object axes) {
        if (axes == null) return null;
        List<String> ids = new ArrayList<>();
        if (axes instanceof String) {
            for (char c : ((String) axes).toCharArray()) {
                switch (c) {
                    case 'b': ids.add("batch"); break;
                    case 'c': ids.add("channel"); break;
                    case 'i': ids.add("index"); break;
                    case 't': ids.add("time"); break;
                    default: ids.add(String.valueOf(c));
                }
            }
        } else if (axes instanceof List) {
            for (Object o : (List<?>) axes) ids.add(String.valueOf(o));
        }
        return ids;
    }

    static boolean[] reduceMask(Tensor x, List<String> ids) {
        boolean[] reduce = new boolean[x.rank()];
        if (ids == null) {
            Arrays.fill(reduce, true);
            return reduce;
        }
        for (String id : ids) {
            int i = x.axisIndex(id);
            if (i < 0) throw new IllegalArgumentException("processing names axis '" + id + "' which tensor "
                    + x.shapeString() + " does not have");
            reduce[i] = true;
        }
        return reduce;
    }

    /** Index along axis {@code id} of every element (for per-axis gains etc.). */
    static int[] alongAxis(Tensor x, String id) {
        int a = x.axisIndex(id);
        if (a < 0) throw new IllegalArgumentException("processing names axis '" + id + "' which tensor "
                + x.shapeString() + " does not have");
        boolean[] reduce = new boolean[x.rank()];
        Arrays.fill(reduce, true);
        reduce[a] = false;
        return x.groupIndex(reduce, new int[1]);
    }

    /** Per-group values of {@code v}, a scalar or a list along {@code axis}. */
    static float[] perElement(Tensor x, double[] v, String axis, String what) {
        if (v.length == 1 && axis == null) return null;
        String ax = axis != null ? axis : "channel";
        int a = x.axisIndex(ax);
        if (a < 0) throw new IllegalArgumentException(what + " has " + v.length + " values but tensor has no axis " + ax);
        if (v.length != 1 && v.length != x.shape[a]) {
            throw new IllegalArgumentException(what + " has " + v.length + " values for axis " + ax + " of size " + x.shape[a]);
        }
        int[] g = alongAxis(x, ax);
        float[] out = new float[x.data.length];
        for (int i = 0; i < out.length; i++) out[i] = (float) v[v.length == 1 ? 0 : g[i]];
        return out;
    }

    // ---- steps --------------------------------------------------------------------------------

    static Tensor scaleLinear(Tensor x, Map<String, Object> kw) {
        double[] gain = nums(kw.getOrDefault("gain", 1.0));
        double[] offset = nums(kw.getOrDefault("offset", 0.0));
        String axis = kw.get("axis") != null ? String.valueOf(kw.get("axis")) : null;
        float[] g = perElement(x, gain, axis, "scale_linear gain");
        float[] o = perElement(x, offset, axis, "scale_linear offset");
        float g0 = (float) gain[0];
        float o0 = (float) offset[0];
        for (int i = 0; i < x.data.length; i++) {
            x.data[i] = x.data[i] * (g == null ? g0 : g[i]) + (o == null ? o0 : o[i]);
        }
        return x;
    }

    /** NumPy's default ("linear") quantile of the values of each group. */
    static double[][] quantiles(Tensor x, boolean[] reduce, double[] qs) {
        int[] count = new int[1];
        int[] gi = x.groupIndex(reduce, count);
        int groups = count[0];
        int[] sizes = new int[groups];
        for (int g : gi) sizes[g]++;
        float[][] vals = new float[groups][];
        for (int g = 0; g < groups; g++) vals[g] = new float[sizes[g]];
        int[] fill = new int[groups];
        for (int i = 0; i < gi.length; i++) vals[gi[i]][fill[gi[i]]++] = x.data[i];
        double[][] out = new double[groups][qs.length];
        for (int g = 0; g < groups; g++) {
            float[] v = vals[g];
            Arrays.sort(v);
            for (int k = 0; k < qs.length; k++) {
                double pos = qs[k] * (v.length - 1);
                int lo = (int) Math.floor(pos);
                int hi = Math.min(lo + 1, v.length - 1);
                double frac = pos - lo;
                float a = v[lo];
                float b = v[hi];
                // numpy's _lerp in the array's dtype (float32): a + (b - a) * t, or b - (b - a) * (1 - t) when t >= 0.5
                float diff = b - a;
                float t = (float) frac;
                float r = frac >= 0.5 ? b - diff * (1f - t) : a + diff * t;
                out[g][k] = r;
            }
        }
        return out;
    }

    static Tensor scaleRange(Tensor x, Map<String, Object> kw, Map<String, Tensor> tensors) {
        double lo = num(kw.get("min_percentile"), 0.0);
        double hi = num(kw.get("max_percentile"), 100.0);
        if (!(lo < hi)) throw new IllegalArgumentException("scale_range needs min_percentile < max_percentile");
        // bioimageio.core 0.11 uses eps = 1e-6 (its ScaleRange ignores kwargs.eps; the spec default is 1e-6)
        float eps = (float) num(kw.get("eps"), 1e-6);
        Tensor ref = x;
        Object rt = kw.get("reference_tensor");
        if (rt != null && tensors != null) {
            ref = tensors.get(String.valueOf(rt));
            if (ref == null) throw new IllegalArgumentException("scale_range reference_tensor '" + rt + "' is unknown");
        }
        List<String> ids = axesIds(kw.get("axes"));
        boolean[] reduce = reduceMask(ref, ids);
        double[][] q = quantiles(ref, reduce, new double[] {lo / 100.0, hi / 100.0});
        int[] gi = ref.groupIndex(reduce, new int[1]);
        if (ref != x && q.length > 1) {
            throw new IllegalArgumentException("scale_range with a reference tensor and per-axis statistics is not supported");
        }
        for (int i = 0; i < x.data.length; i++) {
            int g = q.length == 1 ? 0 : gi[i];
            float l = (float) q[g][0];
            float u = (float) q[g][1];
            x.data[i] = (x.data[i] - l) / (u - l + eps);
        }
        return x;
    }

    static Tensor zeroMeanUnitVariance(Tensor x, Map<String, Object> kw) {
        float eps = (float) num(kw.get("eps"), 1e-6);
        String mode = kw.get("mode") != null ? String.valueOf(kw.get("mode")) : "per_sample";
        if (mode.equals("fixed")) {
            Map<String, Object> fixed = new java.util.LinkedHashMap<>(kw);
            return fixedZeroMeanUnitVariance(x, fixed);
        }
        boolean[] reduce = reduceMask(x, axesIds(kw.get("axes")));
        int[] count = new int[1];
        int[] gi = x.groupIndex(reduce, count);
        double[] sum = new double[count[0]];
        double[] n = new double[count[0]];
        for (int i = 0; i < gi.length; i++) {
            sum[gi[i]] += x.data[i];
            n[gi[i]]++;
        }
        double[] mean = new double[count[0]];
        double[] var = new double[count[0]];
        for (int g = 0; g < mean.length; g++) mean[g] = sum[g] / n[g];
        for (int i = 0; i < gi.length; i++) {
            double d = x.data[i] - mean[gi[i]];
            var[gi[i]] += d * d;
        }
        for (int i = 0; i < x.data.length; i++) {
            int g = gi[i];
            float m = (float) mean[g];
            float s = (float) Math.sqrt(var[g] / n[g]);
            x.data[i] = (x.data[i] - m) / (s + eps);
        }
        return x;
    }

    static Tensor fixedZeroMeanUnitVariance(Tensor x, Map<String, Object> kw) {
        float eps = (float) num(kw.get("eps"), 1e-6);
        double[] mean = nums(kw.get("mean"));
        double[] std = nums(kw.get("std"));
        if (mean == null || std == null) throw new IllegalArgumentException("fixed_zero_mean_unit_variance needs mean and std");
        String axis = kw.get("axis") != null ? String.valueOf(kw.get("axis")) : null;
        float[] m = perElement(x, mean, axis, "mean");
        float[] s = perElement(x, std, axis, "std");
        for (int i = 0; i < x.data.length; i++) {
            float mi = m == null ? (float) mean[0] : m[i];
            float si = s == null ? (float) std[0] : s[i];
            x.data[i] = (x.data[i] - mi) / (si + eps);
        }
        return x;
    }

    static Tensor clip(Tensor x, Map<String, Object> kw) {
        float min = kw.get("min") instanceof Number ? (float) num(kw.get("min"), 0) : Float.NEGATIVE_INFINITY;
        float max = kw.get("max") instanceof Number ? (float) num(kw.get("max"), 0) : Float.POSITIVE_INFINITY;
        float[] minArr = null;
        float[] maxArr = null;
        if (kw.get("min_percentile") instanceof Number || kw.get("max_percentile") instanceof Number) {
            boolean[] reduce = reduceMask(x, axesIds(kw.get("axes")));
            int[] gi = x.groupIndex(reduce, new int[1]);
            double[][] q = quantiles(x, reduce, new double[] {num(kw.get("min_percentile"), 0) / 100.0,
                    num(kw.get("max_percentile"), 100) / 100.0});
            if (kw.get("min_percentile") instanceof Number) {
                minArr = new float[x.data.length];
                for (int i = 0; i < minArr.length; i++) minArr[i] = (float) q[q.length == 1 ? 0 : gi[i]][0];
            }
            if (kw.get("max_percentile") instanceof Number) {
                maxArr = new float[x.data.length];
                for (int i = 0; i < maxArr.length; i++) maxArr[i] = (float) q[q.length == 1 ? 0 : gi[i]][1];
            }
        }
        for (int i = 0; i < x.data.length; i++) {
            float lo = minArr != null ? minArr[i] : min;
            float hi = maxArr != null ? maxArr[i] : max;
            x.data[i] = Math.min(Math.max(x.data[i], lo), hi);
        }
        return x;
    }

    static Tensor binarize(Tensor x, Map<String, Object> kw) {
        double[] thr = nums(kw.get("threshold"));
        if (thr == null) throw new IllegalArgumentException("binarize needs a threshold");
        String axis = kw.get("axis") != null ? String.valueOf(kw.get("axis")) : null;
        float[] t = perElement(x, thr, axis, "binarize threshold");
        for (int i = 0; i < x.data.length; i++) {
            x.data[i] = x.data[i] > (t == null ? (float) thr[0] : t[i]) ? 1f : 0f;
        }
        return x;
    }

    static Tensor ensureDtype(Tensor x, Map<String, Object> kw) {
        String dtype = String.valueOf(kw.get("dtype"));
        if (dtype.startsWith("float")) return x; // the engines are fed float32 anyway
        if (dtype.equals("bool")) {
            for (int i = 0; i < x.data.length; i++) x.data[i] = x.data[i] != 0 ? 1f : 0f;
            return x;
        }
        double lo;
        double hi;
        switch (dtype) {
            case "uint8": lo = 0; hi = 255; break;
            case "int8": lo = -128; hi = 127; break;
            case "uint16": lo = 0; hi = 65535; break;
            case "int16": lo = -32768; hi = 32767; break;
            case "uint32": lo = 0; hi = 4294967295.0; break;
            case "int32": lo = Integer.MIN_VALUE; hi = Integer.MAX_VALUE; break;
            default: lo = -Double.MAX_VALUE; hi = Double.MAX_VALUE;
        }
        for (int i = 0; i < x.data.length; i++) {
            double v = x.data[i] < 0 ? Math.ceil(x.data[i]) : Math.floor(x.data[i]); // astype truncates
            x.data[i] = (float) Math.min(Math.max(v, lo), hi);
        }
        return x;
    }
}
