package org.srredsim.jvm;

import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;

/**
 * The parts of a bioimage.io model description (rdf.yaml, format 0.4 or 0.5) that DeepImageJ's
 * engine library needs to run a model: tensors with axes, test tensors, pre/post-processing,
 * weights and the reproducibility tolerance.
 */
public final class Rdf {
    /** One processing step: its id (0.5) or name (0.4) and keyword arguments. */
    public static final class Proc {
        public final String id;
        public final Map<String, Object> kwargs;

        Proc(String id, Map<String, Object> kwargs) {
            this.id = id;
            this.kwargs = kwargs;
        }

        @Override
        public String toString() {
            return id + kwargs;
        }
    }

    /** One axis: type (batch, channel, index, time, space) and id. */
    public static final class Axis {
        public final String type;
        public final String id;
        public final Map<String, Object> raw;

        Axis(String type, String id, Map<String, Object> raw) {
            this.type = type;
            this.id = id;
            this.raw = raw;
        }

        /** Minimum size and step of a parameterised size, fixed size (step 0), or null if referenced. */
        public long[] sizeRule() {
            Object size = raw.get("size");
            if (size instanceof Number) return new long[] {((Number) size).longValue(), 0};
            if (size instanceof Map) {
                Map<?, ?> m = (Map<?, ?>) size;
                if (m.get("min") instanceof Number) {
                    long min = ((Number) m.get("min")).longValue();
                    long step = m.get("step") instanceof Number ? ((Number) m.get("step")).longValue() : 0;
                    return new long[] {min, step};
                }
            }
            if (type.equals("channel") && raw.get("channel_names") instanceof List) {
                return new long[] {((List<?>) raw.get("channel_names")).size(), 0};
            }
            if (type.equals("batch")) return new long[] {1, 0};
            return null;
        }

        /** For output axes sized from an input axis: {tensor id, axis id, scale, offset}, else null. */
        public Object[] sizeReference() {
            Object size = raw.get("size");
            if (size instanceof Map && ((Map<?, ?>) size).containsKey("tensor_id")) {
                Map<?, ?> m = (Map<?, ?>) size;
                double offset = m.get("offset") instanceof Number ? ((Number) m.get("offset")).doubleValue() : 0;
                double scale = raw.get("scale") instanceof Number ? ((Number) raw.get("scale")).doubleValue() : 1.0;
                return new Object[] {String.valueOf(m.get("tensor_id")), String.valueOf(m.get("axis_id")), scale, offset};
            }
            return null;
        }
    }

    public static final class TensorDescr {
        public final String id;
        public final List<Axis> axes;
        public final String testTensor;
        public final List<Proc> processing;
        public final Map<String, Object> raw;

        TensorDescr(String id, List<Axis> axes, String testTensor, List<Proc> processing, Map<String, Object> raw) {
            this.id = id;
            this.axes = axes;
            this.testTensor = testTensor;
            this.processing = processing;
            this.raw = raw;
        }

        public List<String> axisIds() {
            List<String> ids = new ArrayList<>();
            for (Axis a : axes) ids.add(a.id);
            return ids;
        }
    }

    public static final class Tolerance {
        public double rtol = 1e-3;
        public double atol = 1e-3;
        public double mismatchedPerMillion = 100;
        public List<String> weightsFormats = Collections.emptyList();
        public List<String> outputIds = Collections.emptyList();

        @Override
        public String toString() {
            return "rtol=" + rtol + " atol=" + atol + " mismatched_elements_per_million=" + mismatchedPerMillion;
        }
    }

    public final Path root;
    public final String formatVersion;
    public final String name;
    public final List<TensorDescr> inputs = new ArrayList<>();
    public final List<TensorDescr> outputs = new ArrayList<>();
    /** weights format -> its entry (source, opset_version, tensorflow_version, parent ...). */
    public final Map<String, Map<String, Object>> weights = new LinkedHashMap<>();
    public final List<Tolerance> tolerances = new ArrayList<>();

    private Rdf(Path root, Map<String, Object> y) throws IOException {
        this.root = root;
        this.formatVersion = String.valueOf(y.getOrDefault("format_version", "?"));
        this.name = String.valueOf(y.getOrDefault("name", "?"));
        if (!"model".equals(String.valueOf(y.get("type")))) {
            throw new IOException("rdf.yaml: type is " + y.get("type") + ", expected model");
        }
        boolean v04 = formatVersion.startsWith("0.4") || formatVersion.startsWith("0.3");
        List<Object> ins = list(y.get("inputs"), "inputs");
        List<Object> outs = list(y.get("outputs"), "outputs");
        // 0.4 keeps test tensors in top-level lists; a missing one is reported when a test needs it
        List<Object> testIn = v04 && y.get("test_inputs") instanceof List ? list(y.get("test_inputs"), "test_inputs") : null;
        List<Object> testOut = v04 && y.get("test_outputs") instanceof List ? list(y.get("test_outputs"), "test_outputs") : null;
        for (int i = 0; i < ins.size(); i++) {
            inputs.add(tensor(map(ins.get(i), "inputs[" + i + "]"), v04, testIn, i, "preprocessing"));
        }
        for (int i = 0; i < outs.size(); i++) {
            outputs.add(tensor(map(outs.get(i), "outputs[" + i + "]"), v04, testOut, i, "postprocessing"));
        }
        Map<String, Object> w = map(y.get("weights"), "weights");
        for (Map.Entry<String, Object> e : w.entrySet()) {
            if (e.getValue() != null) weights.put(e.getKey(), map(e.getValue(), "weights." + e.getKey()));
        }
        Object config = y.get("config");
        if (config instanceof Map) {
            Object bio = ((Map<?, ?>) config).get("bioimageio");
            if (bio instanceof Map) {
                Object tol = ((Map<?, ?>) bio).get("reproducibility_tolerance");
                if (tol instanceof List) {
                    for (Object o : (List<?>) tol) {
                        if (!(o instanceof Map)) continue;
                        Map<?, ?> m = (Map<?, ?>) o;
                        Tolerance t = new Tolerance();
                        if (m.get("relative_tolerance") instanceof Number) t.rtol = ((Number) m.get("relative_tolerance")).doubleValue();
                        if (m.get("absolute_tolerance") instanceof Number) t.atol = ((Number) m.get("absolute_tolerance")).doubleValue();
                        if (m.get("mismatched_elements_per_million") instanceof Number) {
                            t.mismatchedPerMillion = ((Number) m.get("mismatched_elements_per_million")).doubleValue();
                        }
                        if (m.get("weights_formats") instanceof List) t.weightsFormats = strings((List<?>) m.get("weights_formats"));
                        if (m.get("output_ids") instanceof List) t.outputIds = strings((List<?>) m.get("output_ids"));
                        tolerances.add(t);
                    }
                }
            }
        }
    }

    /** The tolerance bioimageio.core applies: the first entry matching format and output, else defaults. */
    public Tolerance tolerance(String weightsFormat, String outputId) {
        for (Tolerance t : tolerances) {
            if ((t.weightsFormats.isEmpty() || t.weightsFormats.contains(weightsFormat))
                    && (t.outputIds.isEmpty() || t.outputIds.contains(outputId))) {
                return t;
            }
        }
        return new Tolerance();
    }

    public Path resolve(String source) throws IOException {
        if (source == null) throw new IOException("rdf.yaml: missing file source");
        if (source.startsWith("http://") || source.startsWith("https://")) {
            throw new IOException("rdf.yaml: " + source + " is a URL; this check runs offline on the package's own files");
        }
        Path p = root.resolve(source).normalize();
        if (!p.startsWith(root.normalize())) throw new IOException("rdf.yaml: " + source + " points outside the package");
        if (!Files.exists(p)) throw new IOException("package lacks " + source + " named in rdf.yaml");
        return p;
    }

    private static TensorDescr tensor(Map<String, Object> m, boolean v04, List<Object> tests, int i, String procKey)
            throws IOException {
        String id = String.valueOf(m.containsKey("id") ? m.get("id") : m.get("name"));
        List<Axis> axes = new ArrayList<>();
        Object ax = m.get("axes");
        if (ax instanceof String) {
            for (char c : ((String) ax).toCharArray()) {
                switch (c) {
                    case 'b': axes.add(new Axis("batch", "batch", Collections.emptyMap())); break;
                    case 'c': axes.add(new Axis("channel", "channel", Collections.emptyMap())); break;
                    case 'i': axes.add(new Axis("index", "index", Collections.emptyMap())); break;
                    case 't': axes.add(new Axis("time", "time", Collections.emptyMap())); break;
                    default: axes.add(new Axis("space", String.valueOf(c), Collections.emptyMap()));
                }
            }
        } else if (ax instanceof List) {
            for (Object o : (List<?>) ax) {
                Map<String, Object> a = map(o, "axes of " + id);
                String type = String.valueOf(a.get("type"));
                String aid = a.get("id") != null ? String.valueOf(a.get("id")) : type;
                axes.add(new Axis(type, aid, a));
            }
        } else {
            throw new IOException("rdf.yaml: tensor " + id + " has no axes");
        }
        String test = null;
        if (v04) {
            if (tests != null && i < tests.size()) test = String.valueOf(tests.get(i));
        } else if (m.get("test_tensor") instanceof Map) {
            Object src = ((Map<?, ?>) m.get("test_tensor")).get("source");
            test = src == null ? null : String.valueOf(src);
        }
        List<Proc> procs = new ArrayList<>();
        Object pl = m.get(procKey);
        if (pl instanceof List) {
            for (Object o : (List<?>) pl) {
                Map<String, Object> p = map(o, procKey + " of " + id);
                String pid = String.valueOf(p.containsKey("id") ? p.get("id") : p.get("name"));
                Map<String, Object> kw = p.get("kwargs") instanceof Map ? map(p.get("kwargs"), pid) : new LinkedHashMap<>();
                procs.add(new Proc(pid, kw));
            }
        }
        return new TensorDescr(id, axes, test, procs, m);
    }

    private static List<String> strings(List<?> l) {
        List<String> out = new ArrayList<>();
        for (Object o : l) out.add(String.valueOf(o));
        return out;
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o, String what) throws IOException {
        if (!(o instanceof Map)) throw new IOException("rdf.yaml: " + what + " is not a mapping");
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object o, String what) throws IOException {
        if (!(o instanceof List)) throw new IOException("rdf.yaml: " + what + " is missing or not a list");
        return (List<Object>) o;
    }

    /** Parse {@code root/rdf.yaml} (or bioimageio.yaml). */
    public static Rdf load(Path root) throws IOException {
        Path file = root.resolve("rdf.yaml");
        if (!Files.exists(file)) file = root.resolve("bioimageio.yaml");
        if (!Files.exists(file)) throw new IOException(root + ": no rdf.yaml in the package");
        Yaml yaml = new Yaml(new SafeConstructor(new LoaderOptions()));
        Object doc;
        try (Reader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            doc = yaml.load(r);
        } catch (RuntimeException e) {
            throw new IOException(file + ": not valid YAML (" + e.getMessage() + ")");
        }
        return new Rdf(root, map(doc, "top level"));
    }
}
