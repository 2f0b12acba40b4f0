package org.srredsim.jvm;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.tensorflow.Result;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.Session;
import org.tensorflow.TensorFlow;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.proto.framework.SignatureDef;
import org.tensorflow.proto.framework.TensorInfo;
import org.tensorflow.types.TFloat32;

/**
 * {@code tensorflow_saved_model_bundle} weights on TensorFlow Java 0.5.0 (TF 2.10.1), loaded as
 * JDLL does: the weights zip unpacked (saved_model.pb and variables/ at its root), tag "serve",
 * signature "serving_default", tensors fed and fetched through the signature's tensor names,
 * matched by RDF tensor id, else by position.
 */
public final class TensorFlowEngine implements Engine {
    public static final String TAG = "serve";
    public static final String SIGNATURE = "serving_default";

    private final SavedModelBundle bundle;
    private final SignatureDef signature;

    public TensorFlowEngine(Path savedModelDir) throws Exception {
        if (!Files.exists(savedModelDir.resolve("saved_model.pb"))) {
            throw new IllegalArgumentException("the TensorFlow weights zip has no saved_model.pb at its root "
                    + "(DeepImageJ/JDLL unpacks the zip and loads the SavedModel from its root)");
        }
        this.bundle = SavedModelBundle.load(savedModelDir.toString(), TAG);
        SignatureDef sig = bundle.metaGraphDef().getSignatureDefMap().get(SIGNATURE);
        if (sig == null) {
            bundle.close();
            throw new IllegalArgumentException("the SavedModel has no '" + SIGNATURE + "' signature (has "
                    + bundle.metaGraphDef().getSignatureDefMap().keySet() + ")");
        }
        this.signature = sig;
    }

    @Override
    public String name() {
        return "tensorflow";
    }

    @Override
    public String version() {
        return "TensorFlow Java 0.5.0 (TensorFlow " + TensorFlow.version() + ")";
    }

    static String tensorName(Map<String, TensorInfo> map, String id, int position, String what) {
        TensorInfo info = map.get(id);
        if (info == null) {
            List<TensorInfo> all = new ArrayList<>(map.values());
            if (position >= all.size()) {
                throw new IllegalArgumentException("signature '" + SIGNATURE + "' has " + all.size() + " " + what
                        + "s; no " + what + " named '" + id + "' nor one at position " + position);
            }
            info = all.get(position);
        }
        return info.getName();
    }

    @Override
    public List<Tensor> run(List<Tensor> inputs, List<String> inputIds, List<String> outputIds) {
        List<TFloat32> fed = new ArrayList<>();
        try {
            Session.Runner runner = bundle.session().runner();
            for (int i = 0; i < inputs.size(); i++) {
                Tensor t = inputs.get(i);
                TFloat32 tf = TFloat32.tensorOf(Shape.of(t.shape), DataBuffers.of(t.data, true, false));
                fed.add(tf);
                runner.feed(tensorName(signature.getInputsMap(), inputIds.get(i), i, "input"), tf);
            }
            for (int i = 0; i < outputIds.size(); i++) {
                runner.fetch(tensorName(signature.getOutputsMap(), outputIds.get(i), i, "output"));
            }
            List<Tensor> outs = new ArrayList<>();
            try (Result result = runner.run()) {
                for (int i = 0; i < outputIds.size(); i++) {
                    org.tensorflow.Tensor raw = result.get(i);
                    if (!(raw instanceof TFloat32)) {
                        throw new IllegalArgumentException("output " + outputIds.get(i) + " is " + raw.dataType()
                                + ", expected float32");
                    }
                    TFloat32 o = (TFloat32) raw;
                    long[] shape = o.shape().asArray();
                    float[] data = new float[(int) Tensor.size(shape)];
                    o.read(DataBuffers.of(data, false, false));
                    outs.add(new Tensor(shape, data, null));
                }
            }
            return outs;
        } finally {
            for (TFloat32 t : fed) t.close();
        }
    }

    @Override
    public void close() {
        bundle.close();
    }
}
