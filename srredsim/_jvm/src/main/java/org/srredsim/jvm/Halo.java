package org.srredsim.jvm;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Context beyond the image border, as the RDF declares it and as JDLL (DeepImageJ) and bioimageio.core
 * apply it: every output axis with a {@code halo} asks for that many output pixels of context, i.e.
 * {@code halo * output axis scale / input axis scale} input pixels (bioimageio.core's get_input_halo);
 * the input is extended by that much on each side with the input's {@code pad} mode (default
 * {@code symmetric}: bioimageio.core's default and JDLL's {@code Views.extendMirrorDouble}), the model
 * runs, and the halo is cropped from the output.
 */
final class Halo {
    private Halo() {}

    /** input tensor id -> axis id -> pixels added on each side. */
    static Map<String, Map<String, Integer>> inputHalos(Rdf rdf) {
        Map<String, Map<String, Integer>> out = new LinkedHashMap<>();
        for (Rdf.TensorDescr d : rdf.outputs) {
            for (Rdf.Axis a : d.axes) {
                int h = a.raw.get("halo") instanceof Number ? ((Number) a.raw.get("halo")).intValue() : 0;
                Object[] ref = a.sizeReference();
                if (h <= 0 || ref == null) continue;
                double outScale = (Double) ref[2];
                double inScale = 1.0;
                for (Rdf.TensorDescr in : rdf.inputs) {
                    if (!in.id.equals(ref[0])) continue;
                    for (Rdf.Axis ia : in.axes) {
                        if (ia.id.equals(ref[1]) && ia.raw.get("scale") instanceof Number) {
                            inScale = ((Number) ia.raw.get("scale")).doubleValue();
                        }
                    }
                }
                int ih = (int) Math.round(h * outScale / inScale);
                out.computeIfAbsent((String) ref[0], k -> new LinkedHashMap<>()).merge((String) ref[1], ih, Math::max);
            }
        }
        return out;
    }

    /** axis id -> output pixels to crop on each side. */
    static Map<String, Integer> outputHalo(Rdf.TensorDescr d) {
        Map<String, Integer> out = new LinkedHashMap<>();
        for (Rdf.Axis a : d.axes) {
            if (a.raw.get("halo") instanceof Number && ((Number) a.raw.get("halo")).intValue() > 0) {
                out.put(a.id, ((Number) a.raw.get("halo")).intValue());
            }
        }
        return out;
    }

    /** The input's padding mode and fill value (spec 0.5 {@code pad}; bioimageio.core's default otherwise). */
    static Object[] padMode(Rdf.TensorDescr d) {
        Object pad = d.raw.get("pad");
        if (pad instanceof Map) {
            Map<?, ?> m = (Map<?, ?>) pad;
            String mode = m.get("mode") == null ? "constant" : String.valueOf(m.get("mode"));
            double value = m.get("value") instanceof Number ? ((Number) m.get("value")).doubleValue() : 0.0;
            return new Object[] {mode, value};
        }
        return new Object[] {"symmetric", 0.0};
    }

    /** Index into [0, n) for position i of an axis extended with {@code mode}, or -1 for the fill value. */
    static int source(int i, int n, String mode) {
        if (i >= 0 && i < n) return i;
        switch (mode) {
            case "symmetric": {
                int j = Math.floorMod(i, 2 * n);
                return j < n ? j : 2 * n - 1 - j;
            }
            case "reflect": {
                if (n == 1) return 0;
                int j = Math.floorMod(i, 2 * n - 2);
                return j < n ? j : 2 * n - 2 - j;
            }
            case "edge":
                return i < 0 ? 0 : n - 1;
            case "constant":
                return -1;
            default:
                throw new IllegalArgumentException("unknown pad mode " + mode);
        }
    }

    /** {@code t} extended by {@code halo} (axis id -> pixels per side). */
    static Tensor pad(Tensor t, Map<String, Integer> halo, Object[] mode) {
        if (halo == null || halo.isEmpty()) return t;
        List<String> axes = t.axes;
        long[] shape = t.shape.clone();
        int[] add = new int[shape.length];
        for (int i = 0; i < shape.length; i++) {
            Integer h = axes == null ? null : halo.get(axes.get(i));
            add[i] = h == null ? 0 : h;
            shape[i] += 2L * add[i];
        }
        String m = (String) mode[0];
        float fill = ((Number) mode[1]).floatValue();
        float[] data = new float[(int) Tensor.size(shape)];
        long[] st = Tensor.strides(shape);
        long[] src = Tensor.strides(t.shape);
        for (int flat = 0; flat < data.length; flat++) {
            long rem = flat;
            long idx = 0;
            boolean outside = false;
            for (int i = 0; i < shape.length; i++) {
                int c = (int) (rem / st[i]);
                rem -= (long) c * st[i];
                int s = source(c - add[i], (int) t.shape[i], m);
                if (s < 0) {
                    outside = true;
                    break;
                }
                idx += (long) s * src[i];
            }
            data[flat] = outside ? fill : t.data[(int) idx];
        }
        return new Tensor(shape, data, t.axes);
    }

    /** {@code t} without {@code halo} pixels on each side of the named axes. */
    static Tensor crop(Tensor t, Map<String, Integer> halo) {
        if (halo == null || halo.isEmpty()) return t;
        long[] shape = t.shape.clone();
        int[] cut = new int[shape.length];
        for (int i = 0; i < shape.length; i++) {
            Integer h = t.axes == null ? null : halo.get(t.axes.get(i));
            cut[i] = h == null ? 0 : h;
            shape[i] -= 2L * cut[i];
            if (shape[i] <= 0) {
                throw new IllegalArgumentException("output " + t.shapeString() + " is not larger than its halo " + halo);
            }
        }
        float[] data = new float[(int) Tensor.size(shape)];
        long[] st = Tensor.strides(shape);
        long[] src = Tensor.strides(t.shape);
        for (int flat = 0; flat < data.length; flat++) {
            long rem = flat;
            long idx = 0;
            for (int i = 0; i < shape.length; i++) {
                int c = (int) (rem / st[i]);
                rem -= (long) c * st[i];
                idx += (long) (c + cut[i]) * src[i];
            }
            data[flat] = t.data[(int) idx];
        }
        return new Tensor(shape, data, t.axes);
    }
}
