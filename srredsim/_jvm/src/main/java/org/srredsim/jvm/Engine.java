package org.srredsim.jvm;

import java.util.List;

/** A loaded model on one of DeepImageJ's engines: tensors in, tensors out (in RDF order). */
public interface Engine extends AutoCloseable {
    /** e.g. "tensorflow" or "onnx". */
    String name();

    /** Engine library and version, e.g. "TensorFlow Java 0.5.0 (TF 2.10.1)". */
    String version();

    /** Run the model; {@code inputs} are in the RDF's input order, outputs come in its output order. */
    List<Tensor> run(List<Tensor> inputs, List<String> inputIds, List<String> outputIds) throws Exception;

    @Override
    void close();
}
