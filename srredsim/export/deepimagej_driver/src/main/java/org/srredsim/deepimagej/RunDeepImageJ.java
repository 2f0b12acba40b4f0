package org.srredsim.deepimagej;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.lang.reflect.Field;
import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketPermission;
import java.nio.charset.StandardCharsets;
import java.security.Permission;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.Hashtable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.jar.JarFile;

import com.google.gson.Gson;

import ij.IJ;
import ij.Menus;
import ij.macro.Interpreter;
import io.bioimage.modelrunner.bioimageio.description.ModelDescriptor;
import io.bioimage.modelrunner.bioimageio.description.ModelDescriptorFactory;
import io.bioimage.modelrunner.bioimageio.description.TensorSpec;
import io.bioimage.modelrunner.bioimageio.description.weights.ModelWeight;
import io.bioimage.modelrunner.bioimageio.description.weights.WeightFormat;
import io.bioimage.modelrunner.engine.EngineInfo;
import io.bioimage.modelrunner.versionmanagement.AvailableEngines;
import io.bioimage.modelrunner.versionmanagement.DeepLearningVersion;

/**
 * Runs a bioimage.io package through DeepImageJ's own macro path, headless, and reports what happened.
 *
 * <p>What runs is DeepImageJ's code, unchanged: an ImageJ macro calls {@code run("DeepImageJ Run",
 * "model_path=... input_path=... output_folder=... display_output=null")} (or a whole macro file, such as
 * the one shipped for Fiji users), ImageJ's {@code IJ.run} executes the {@code DeepImageJ_Run} plugin,
 * whose {@code runMacro()} reads the RDF with JDLL, creates a {@code Runner} on {@code <FIJI>/engines},
 * calls {@code load(true)} and {@code run}, and saves the result with {@code IJ.saveAsTiff}.
 *
 * <p>Two things Fiji provides are supplied here, and nothing else:
 * <ul>
 * <li>the command table: plain ImageJ 1.x builds it together with AWT menus, which cannot exist headless
 *     (Fiji's imagej-legacy layer fills it instead). The entries come from DeepImageJ's own
 *     {@code plugins.config}, exactly as ImageJ registers a plugin jar;</li>
 * <li>the Fiji folder: DeepImageJ takes it from the working directory when no Fiji launcher is above
 *     {@code java.home}, so the caller starts this JVM in a folder holding {@code engines/} and
 *     {@code models/}.</li>
 * </ul>
 *
 * <p>Network: a security manager records every attempt to resolve or connect to a host and refuses it
 * (the caller also runs this JVM in an empty network namespace where it can). Results are printed as lines
 * {@code SRREDSIM_DIJ_RESULT {json}}.
 *
 * <pre>
 * java -Djava.security.manager=allow -Djava.awt.headless=true -jar srredsim-deepimagej.jar
 *      --model DIR (--run "OPTIONS" | --macro FILE [--macro-arg ARG])
 * java -jar srredsim-deepimagej.jar --engines-for DIR
 *      (for each weight format JDLL runs: the engine {@code load(true)} would install from JDLL's own
 *       catalogue: folder name and jar URLs, CPU build)
 * </pre>
 */
public final class RunDeepImageJ {
    static final String PREFIX = "SRREDSIM_DIJ_RESULT ";
    static final List<String> NETWORK_ATTEMPTS = Collections.synchronizedList(new ArrayList<>());
    static final List<String> ERRORS = Collections.synchronizedList(new ArrayList<>());

    private RunDeepImageJ() {}

    /** Refuses (and records) every name lookup or connection; allows everything else. */
    static final class NoNetwork extends SecurityManager {
        @Override
        public void checkPermission(Permission perm) {
            if (perm instanceof SocketPermission) {
                String actions = perm.getActions();
                if (actions.contains("connect") || actions.contains("resolve") || actions.contains("accept")
                        || actions.contains("listen")) {
                    String what = perm.getName() + " (" + actions + ")";
                    NETWORK_ATTEMPTS.add(what);
                    throw new SecurityException("srredsim: network access refused: " + what);
                }
            }
        }

        @Override
        public void checkPermission(Permission perm, Object context) {
            checkPermission(perm);
        }
    }

    static void emit(Map<String, Object> m) {
        System.out.println(PREFIX + new Gson().toJson(m));
        System.out.flush();
    }

    static String trace(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (sb.length() > 0) sb.append(" <- ");
            sb.append(c.getClass().getName()).append(c.getMessage() == null ? "" : ": " + c.getMessage().trim());
        }
        return sb.toString();
    }

    /** The network interfaces this JVM sees (an empty namespace shows only a loopback that is down). */
    static List<String> interfaces() {
        List<String> out = new ArrayList<>();
        try {
            Enumeration<NetworkInterface> e = NetworkInterface.getNetworkInterfaces();
            while (e != null && e.hasMoreElements()) {
                NetworkInterface ni = e.nextElement();
                List<String> addrs = new ArrayList<>();
                for (Enumeration<InetAddress> a = ni.getInetAddresses(); a.hasMoreElements();) {
                    addrs.add(a.nextElement().getHostAddress());
                }
                out.add(ni.getName() + (ni.isUp() ? " up " : " down ") + addrs);
            }
        } catch (java.net.SocketException ex) {
            // what an empty network namespace gives: "No network interfaces configured"
            out.add("none (" + ex.getMessage() + ")");
        } catch (Exception ex) {
            out.add("error: " + trace(ex));
        }
        return out;
    }

    /** Register DeepImageJ's commands as ImageJ does for a plugin jar (read its plugins.config). */
    @SuppressWarnings("unchecked")
    static Map<String, String> registerCommands() throws Exception {
        File jar = new File(Class.forName("DeepImageJ_Run").getProtectionDomain().getCodeSource().getLocation().toURI());
        Map<String, String> commands = new LinkedHashMap<>();
        try (JarFile jf = new JarFile(jar);
             InputStream in = jf.getInputStream(jf.getEntry("plugins.config"));
             BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null;) {
                line = line.trim();
                if (line.isEmpty() || line.startsWith("#")) continue;
                int q1 = line.indexOf('"');
                int q2 = line.indexOf('"', q1 + 1);
                if (q1 < 0 || q2 < 0) continue;
                String label = line.substring(q1 + 1, q2);
                String cls = line.substring(line.indexOf(',', q2) + 1).trim();
                commands.put(label, cls);
            }
        }
        Field f = Menus.class.getDeclaredField("pluginsTable");
        f.setAccessible(true);
        Hashtable<String, String> table = (Hashtable<String, String>) f.get(null);
        if (table == null) {
            table = new Hashtable<>();
            f.set(null, table);
        }
        table.putAll(commands);
        return commands;
    }

    /** Which engine JDLL will run the package on: the same search as BioimageIoModelJava.createBioimageioModel. */
    static Map<String, Object> engineChoice(String modelDir, String enginesDir) {
        Map<String, Object> m = new LinkedHashMap<>();
        try {
            ModelDescriptor d = ModelDescriptorFactory.readFromLocalFile(modelDir + File.separator + "rdf.yaml");
            m.put("nickname", d.getNickname());
            List<Object> tensors = new ArrayList<>();
            for (TensorSpec t : d.getInputTensors()) {
                Map<String, Object> tm = new LinkedHashMap<>();
                tm.put("input", t.getName());
                tm.put("axes", t.getAxesOrder());
                tm.put("halo", t.getAxesInfo().getHaloArr());
                tensors.add(tm);
            }
            for (TensorSpec t : d.getOutputTensors()) {
                Map<String, Object> tm = new LinkedHashMap<>();
                tm.put("output", t.getName());
                tm.put("axes", t.getAxesOrder());
                tm.put("halo", t.getAxesInfo().getHaloArr());
                tm.put("scale", t.getAxesInfo().getTileScaleArr());
                tensors.add(tm);
            }
            m.put("tensors", tensors);
            for (WeightFormat ww : d.getWeights().gettAllSupportedWeightObjects()) {
                String source = ww.getSourceFileName();
                boolean tf = ww.getFramework().equals(ModelWeight.getTensorflowID());
                if (!new File(modelDir, source).isFile() && !tf) continue;
                EngineInfo info = EngineInfo.defineCompatibleDLEngineWithRdfYamlWeights(ww, enginesDir);
                if (info != null) {
                    m.put("weights", ww.getFramework());
                    m.put("weights_version", ww.getTrainingVersion());
                    m.put("engine", info.getFramework());
                    m.put("engine_version", info.getVersion());
                    m.put("engine_dir", info.getDeepLearningVersionJarsDirectory());
                    break;
                }
            }
        } catch (Throwable t) {
            m.put("error", trace(t));
        }
        return m;
    }

    /**
     * The engines JDLL's {@code load(true)} installs for a package (EngineInstall.installEngineForWeightsInDir),
     * read from JDLL's own catalogue. JDLL prefers a CPU+GPU build where one exists; the CPU build of the same
     * version is listed (a CPU-only machine runs the same code) together with the variant JDLL would download.
     */
    static void enginesFor(String modelDir) throws Exception {
        ModelDescriptor d = ModelDescriptorFactory.readFromLocalFile(modelDir + File.separator + "rdf.yaml");
        for (WeightFormat ww : d.getWeights().gettAllSupportedWeightObjects()) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("kind", "engine");
            m.put("weights", ww.getFramework());
            m.put("weights_version", ww.getTrainingVersion());
            List<DeepLearningVersion> cpu = AvailableEngines.getEnginesForOsByParams(ww.getFramework(),
                    ww.getTrainingVersion(), true, false);
            List<DeepLearningVersion> both = AvailableEngines.getEnginesForOsByParams(ww.getFramework(),
                    ww.getTrainingVersion(), true, true);
            if (cpu.isEmpty()) {
                m.put("ok", false);
                m.put("detail", "JDLL has no CPU engine for " + ww.getFramework() + " " + ww.getTrainingVersion());
            } else {
                DeepLearningVersion v = cpu.get(0);
                m.put("ok", true);
                m.put("framework", v.getFramework());
                m.put("version", v.getVersion());
                m.put("python_version", v.getPythonVersion());
                m.put("folder", v.folderName());
                m.put("jars", v.getJars());
                m.put("jdll_downloads", both.isEmpty() ? v.folderName() : both.get(0).folderName());
            }
            emit(m);
        }
    }

    public static void main(String[] args) {
        if (args.length == 2 && args[0].equals("--engines-for")) {
            int code = 0;
            try {
                enginesFor(args[1]);
            } catch (Throwable t) {
                Map<String, Object> r = new LinkedHashMap<>();
                r.put("kind", "engine");
                r.put("ok", false);
                r.put("detail", trace(t));
                emit(r);
                code = 1;
            }
            Runtime.getRuntime().halt(code);
        }
        String model = null, run = null, macro = null, macroArg = "";
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--model": model = args[++i]; break;
                case "--run": run = args[++i]; break;
                case "--macro": macro = args[++i]; break;
                case "--macro-arg": macroArg = args[++i]; break;
                default:
                    System.err.println("unknown argument " + args[i]);
                    System.exit(2);
            }
        }
        if (model == null || (run == null) == (macro == null)) {
            System.err.println("usage: --model DIR (--run OPTIONS | --macro FILE [--macro-arg ARG])");
            System.exit(2);
        }
        int code = 1;
        try {
            code = execute(model, run, macro, macroArg);
        } catch (Throwable t) {
            Map<String, Object> r = new LinkedHashMap<>();
            r.put("kind", "run");
            r.put("ok", false);
            r.put("detail", trace(t));
            emit(r);
        }
        System.out.flush();
        System.err.flush();
        // JDLL and the engines leave non-daemon threads (and a TensorFlow worker process) behind
        Runtime.getRuntime().halt(code);
    }

    static int execute(String model, String run, String macro, String macroArg) throws Exception {
        System.setSecurityManager(new NoNetwork());
        String fiji = new File("").getAbsolutePath();
        Map<String, Object> env = new LinkedHashMap<>();
        env.put("kind", "environment");
        env.put("java", System.getProperty("java.version"));
        env.put("working_directory", fiji);
        env.put("interfaces", interfaces());
        env.put("imagej", IJ.getVersion());
        env.put("deepimagej_fiji_folder", deepimagej.Constants.FIJI_FOLDER);
        env.put("deepimagej_version", deepimagej.Constants.DIJ_VERSION);
        env.put("jdll_jar", new File(ModelDescriptor.class.getProtectionDomain().getCodeSource().getLocation().toURI())
                .getName());
        env.put("commands", registerCommands());
        env.put("jdll", engineChoice(model, deepimagej.Constants.FIJI_FOLDER + File.separator + "engines"));
        emit(env);

        IJ.setExceptionHandler(t -> {
            ERRORS.add(trace(t));
            t.printStackTrace();
        });
        long t0 = System.nanoTime();
        String text = run != null ? "run(\"DeepImageJ Run\", \"" + run.replace("\\", "\\\\").replace("\"", "\\\"") + "\");\n"
                : null;
        String returned;
        try {
            if (text != null) {
                returned = new Interpreter().run(text, null);
            } else {
                returned = IJ.runMacroFile(macro, macroArg);
            }
        } catch (Throwable t) {
            ERRORS.add(trace(t));
            returned = null;
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("kind", "run");
        r.put("seconds", (System.nanoTime() - t0) / 1e9);
        r.put("macro", text != null ? text.trim() : macro);
        r.put("macro_returned", returned);
        r.put("errors", new ArrayList<>(ERRORS));
        r.put("network_attempts", new ArrayList<>(NETWORK_ATTEMPTS));
        boolean ok = ERRORS.isEmpty() && NETWORK_ATTEMPTS.isEmpty();
        r.put("ok", ok);
        r.put("detail", ok ? "DeepImageJ Run finished" : (!ERRORS.isEmpty() ? ERRORS.get(0)
                : "network access attempted: " + NETWORK_ATTEMPTS));
        emit(r);
        return ok ? 0 : 1;
    }
}
