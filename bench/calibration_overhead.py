#!/usr/bin/python3
"""What static calibration costs beyond ONNX Runtime's own inference, on PaddleOCR's detector.

  /usr/bin/python3 bench/calibration_overhead.py [build/bin/zeropoint] [--samples 32] [--size 640] [--repeat 3]

Generates document-like 640x640 samples (scripts/make-onnx-samples.py), then, in the same
run and alternating, times (a) ONNX Runtime alone loading the float model and running every sample
(bench/ort_baseline.js), and (b) `zeropoint quantize --mode static` calibrating on the same samples,
for each observer. Reports the medians and the overhead: calibration time / ONNX Runtime time - 1.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    args = sys.argv[1:]
    zp = args.pop(0) if args and not args[0].startswith("--") else os.path.join(ROOT, "build", "bin", "zeropoint")
    opts = dict(zip(args[::2], args[1::2]))
    samples, size, repeat = int(opts.get("--samples", 32)), int(opts.get("--size", 640)), int(opts.get("--repeat", 3))
    build = os.path.dirname(os.path.dirname(os.path.abspath(zp)))
    env = dict(os.environ, ZEROPOINT_ORT_MODULES=os.path.join(build, "onnxruntime-node", "node_modules"))
    models = os.path.join(build, "test-models")
    subprocess.run([os.path.join(ROOT, "scripts", "fetch-test-models"), models], check=True, stdout=subprocess.DEVNULL)
    det = os.path.join(models, "ch_PP-OCRv4_det_infer.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make-onnx-samples.py"), tmp, "--count",
                        str(samples), "--size", str(size), "--seed", "5"], check=True, stdout=subprocess.DEVNULL)
        files = sorted(os.path.join(tmp, f) for f in os.listdir(tmp) if f.endswith(".npy"))
        baseline, results = [], {}
        for _ in range(repeat):
            p = subprocess.run(["node", os.path.join(ROOT, "bench", "ort_baseline.js"), det, *files], env=env,
                               capture_output=True, text=True, check=True)
            baseline.append(json.loads(p.stdout)["total_s"])
            for method in ["minmax", "percentile", "mse"]:
                p = subprocess.run([zp, "quantize", det, "-o", os.path.join(tmp, "out.onnx"), "--mode", "static",
                                    "--method", method, "--calibration", *files, "--json", "-q"], env=env,
                                   capture_output=True, text=True, check=True)
                j = json.loads(p.stdout)
                results.setdefault(method, []).append((j["calibration_seconds"], j["inference_seconds"]))
        ort = statistics.median(baseline)
        print(f"det {size}x{size}, {samples} samples, median of {repeat}; ONNX Runtime alone (load + runs): {ort:.2f} s")
        print(f"{'observer':<12}{'calibration s':>15}{'of which ORT s':>16}{'vs ORT alone':>14}{'vs its own ORT':>16}")
        for method, runs in results.items():
            cal = statistics.median(r[0] for r in runs)
            inner = statistics.median(r[1] for r in runs)
            print(f"{method:<12}{cal:>15.2f}{inner:>16.2f}{100 * (cal / ort - 1):>13.0f}%{100 * (cal / inner - 1):>15.0f}%")


if __name__ == "__main__":
    main()
