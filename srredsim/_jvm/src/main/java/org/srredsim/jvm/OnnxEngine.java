package org.srredsim.jvm;

import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;

/**
 * {@code onnx} weights on ONNX Runtime Java 1.13.1, the newest ONNX Runtime DeepImageJ 3 / JDLL
 * offers: basic graph optimisation, CPU, inputs and outputs by position. ONNX Runtime 1.13.1 reads
 * IR version up to 8 and opsets up to 17; a newer model fails when the session is created, with the
 * same error DeepImageJ shows.
 */
public final class OnnxEngine implements Engine {
    private final OrtEnvironment env;
    private final OrtSession session;

    public OnnxEngine(Path model) throws Exception {
        this.env = OrtEnvironment.getEnvironment();
        OrtSession.SessionOptions opts = new OrtSession.SessionOptions();
        opts.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.BASIC_OPT);
        this.session = env.createSession(model.toString(), opts);
    }

    @Override
    public String name() {
        return "onnx";
    }

    @Override
    public String version() {
        String v = OrtEnvironment.class.getPackage().getImplementationVersion();
        return "ONNX Runtime Java " + (v != null ? v : "1.13.1");
    }

    @Override
    public List<Tensor> run(List<Tensor> inputs, List<String> inputIds, List<String> outputIds) throws Exception {
        List<String> names = new ArrayList<>(session.getInputNames());
        if (names.size() != inputs.size()) {
            throw new IllegalArgumentException("the ONNX model has " + names.size() + " inputs, rdf.yaml describes " + inputs.size());
        }
        Map<String, OnnxTensor> feed = new LinkedHashMap<>();
        try {
            for (int i = 0; i < inputs.size(); i++) {
                Tensor t = inputs.get(i);
                feed.put(names.get(i), OnnxTensor.createTensor(env, FloatBuffer.wrap(t.data), t.shape));
            }
            List<Tensor> outs = new ArrayList<>();
            try (OrtSession.Result result = session.run(feed)) {
                if (result.size() < outputIds.size()) {
                    throw new IllegalArgumentException("the ONNX model has " + result.size() + " outputs, rdf.yaml describes "
                            + outputIds.size());
                }
                for (int i = 0; i < outputIds.size(); i++) {
                    OnnxValue v = result.get(i);
                    if (!(v instanceof OnnxTensor)) throw new IllegalArgumentException("output " + i + " is not a tensor");
                    OnnxTensor ot = (OnnxTensor) v;
                    long[] shape = ot.getInfo().getShape();
                    FloatBuffer fb = ot.getFloatBuffer();
                    if (fb == null) throw new IllegalArgumentException("output " + i + " is " + ot.getInfo().type + ", expected float32");
                    float[] data = new float[fb.remaining()];
                    fb.get(data);
                    outs.add(new Tensor(shape, data, null));
                }
            }
            return outs;
        } finally {
            for (OnnxTensor t : feed.values()) t.close();
        }
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (Exception e) {
            // nothing to do
        }
    }
}
