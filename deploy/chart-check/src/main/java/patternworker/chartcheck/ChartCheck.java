package patternworker.chartcheck;

import com.marcnuri.helm.Helm;
import com.marcnuri.helm.InstallCommand;
import com.marcnuri.helm.LintResult;
import com.marcnuri.helm.TemplateCommand;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * One JVM start for every check, because starting the JVM and loading Helm's native library is the slow
 * part.
 *
 * <p>Usage: {@code ChartCheck <chartDir> <outDir> <case>=<valuesFile|-> ...}
 *
 * <p>Writes, under outDir: {@code lint.json} (helm lint --strict on the chart's defaults), for each case
 * either {@code <case>.yaml} (helm template output) or {@code <case>.error} (Helm's message), and
 * {@code schemas/*.json} (every {@code schema/validation-schema.json} found on the class path).
 */
public final class ChartCheck {
  private static final String RELEASE = "pw";
  private static final String NAMESPACE = "patterns";
  // Helm's client-only default is v1.20; render for the API version the fabric8 6.13 schemas describe.
  private static final String KUBE_VERSION = "1.30.0";

  private ChartCheck() {}

  public static void main(String[] args) throws IOException {
    if (args.length < 2) {
      System.err.println("usage: ChartCheck <chartDir> <outDir> <case>=<valuesFile|-> ...");
      System.exit(2);
    }
    Path chart = Path.of(args[0]).toAbsolutePath();
    Path out = Path.of(args[1]).toAbsolutePath();
    Files.createDirectories(out.resolve("schemas"));
    LintResult lint = new Helm(chart).lint().strict().call();
    Files.writeString(
        out.resolve("lint.json"),
        "{\"failed\":" + lint.isFailed() + ",\"messages\":" + jsonArray(lint.getMessages()) + "}\n");
    System.out.println("lint: " + (lint.isFailed() ? "FAILED" : "ok"));

    // helm-java returns the release manifest without hook resources, so templates render from a copy whose
    // hook annotations are renamed: the migration and topic Jobs then appear and get validated too.
    Path copy = out.resolve("chart");
    copyChart(chart, copy);
    Helm helm = new Helm(copy);

    for (int i = 2; i < args.length; i++) {
      String[] pair = args[i].split("=", 2);
      String name = pair[0];
      TemplateCommand template = helm.template().withName(RELEASE).withNamespace(NAMESPACE).withKubeVersion(KUBE_VERSION);
      if (pair.length == 2 && !pair[1].equals("-")) {
        template = template.withValuesFile(Path.of(pair[1]).toAbsolutePath());
      }
      Files.deleteIfExists(out.resolve(name + ".yaml"));
      Files.deleteIfExists(out.resolve(name + ".error"));
      try {
        Files.writeString(out.resolve(name + ".yaml"), template.call());
        InstallCommand install =
            helm.install().withName(RELEASE).withNamespace(NAMESPACE).withKubeVersion(KUBE_VERSION).clientOnly().dryRun();
        if (pair.length == 2 && !pair[1].equals("-")) install = install.withValuesFile(Path.of(pair[1]).toAbsolutePath());
        Files.writeString(out.resolve(name + ".install.txt"), install.call().getOutput());
        System.out.println(name + ": rendered");
      } catch (RuntimeException e) {
        // Helm reports schema violations and template failures as exceptions with its own message.
        Files.writeString(out.resolve(name + ".error"), String.valueOf(e.getMessage()));
        System.out.println(name + ": rejected");
      }
    }

    List<URL> schemas =
        Collections.list(ChartCheck.class.getClassLoader().getResources("schema/validation-schema.json"));
    int n = 0;
    for (URL url : schemas) {
      String jar = url.getPath().replaceAll("^.*/([^/!]+)\\.jar!.*$", "$1");
      try (InputStream in = url.openStream()) {
        Files.write(out.resolve("schemas").resolve(String.format("%02d-%s.json", n++, jar)), in.readAllBytes());
      }
    }
    System.out.println("schemas: " + n);
  }

  static final String HOOK_STAND_IN = "rendered-hook.invalid/hook";

  private static void copyChart(Path from, Path to) throws IOException {
    if (Files.exists(to)) {
      try (Stream<Path> old = Files.walk(to)) {
        for (Path p : old.sorted(Comparator.reverseOrder()).toList()) Files.delete(p);
      }
    }
    try (Stream<Path> files = Files.walk(from)) {
      for (Path p : files.toList()) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(target);
        } else if (p.getParent().getFileName().toString().equals("templates")) {
          Files.writeString(target, Files.readString(p).replace("helm.sh/hook", HOOK_STAND_IN));
        } else {
          Files.copy(p, target);
        }
      }
    }
  }

  private static String jsonArray(List<String> items) {
    List<String> quoted = new ArrayList<>();
    for (String s : items) {
      StringBuilder b = new StringBuilder("\"");
      for (char c : s.toCharArray()) {
        if (c == '"' || c == '\\') b.append('\\').append(c);
        else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
        else b.append(c);
      }
      quoted.add(b.append('"').toString());
    }
    return "[" + String.join(",", quoted) + "]";
  }
}
