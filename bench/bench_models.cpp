// Whole checkpoints: `zeropoint quantize` on a generated bf16 checkpoint of about 1.15 GiB (the
// shapes of a 4096-wide Llama layer stack, two shards), next to a plain copy of the same files
// (read and write in 4 MiB pieces, as cp does) measured in the same run, on the same file
// system, between the quantizer's iterations.
//
//   build/bin/zeropoint_bench_models                       (about a minute; makes the checkpoint once)
//   ZEROPOINT_BENCH_DIR=/dev/shm/zp build/bin/zeropoint_bench_models   (in memory: no disk writeback)
//
// GBps is bytes of input tensor data per second; copy_GBps the copy's rate; pct_of_copy their
// ratio; durable_copy_GBps and pct_of_durable_copy the same for a copy that flushes each file to
// disk before closing it, as zeropoint does with its outputs (an atomic replace is only safe once
// the new file's data is on disk). All take the fastest of their iterations.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "zeropoint/formats/gguf.hpp"
#include "zeropoint/formats/safetensors.hpp"
#include "zeropoint/ggml_model.hpp"
#include "zeropoint/model.hpp"

namespace {

namespace fs = std::filesystem;
namespace st = zp::safetensors;
using Clock = std::chrono::steady_clock;

fs::path bench_dir() {
  const char* dir = std::getenv("ZEROPOINT_BENCH_DIR");
  return dir && *dir ? fs::path(dir) : fs::temp_directory_path() / "zeropoint-bench-model";
}

// bf16 values with a bell shape and a few large ones, cheaply (an LCG, the sum of four uniforms).
void fill_bf16(std::vector<std::uint16_t>& out, std::uint64_t seed) {
  std::uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (std::uint16_t& v : out) {
    float sum = 0;
    for (int k = 0; k < 4; ++k) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      sum += static_cast<float>(s >> 40) * (1.0f / 16777216.0f);
    }
    float x = (sum - 2.0f) * 0.03f;
    if ((s & 1023) == 0) x *= 20.0f;
    std::uint32_t bits;
    std::memcpy(&bits, &x, sizeof(bits));
    v = static_cast<std::uint16_t>((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
  }
}

// The checkpoint: embeddings, two layers of a 4096-wide Llama (GQA 32/8 heads), norms, lm_head.
fs::path make_checkpoint() {
  const fs::path dir = bench_dir() / "model";
  if (fs::exists(dir / "model.safetensors.index.json")) return dir;
  fs::create_directories(dir);
  const std::int64_t hidden = 4096, inter = 11008, vocab = 32000, kv = 1024;
  std::vector<st::PlannedTensor> all{{"model.embed_tokens.weight", "BF16", {vocab, hidden}}};
  for (int layer = 0; layer < 2; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    all.push_back({p + "self_attn.q_proj.weight", "BF16", {hidden, hidden}});
    all.push_back({p + "self_attn.k_proj.weight", "BF16", {kv, hidden}});
    all.push_back({p + "self_attn.v_proj.weight", "BF16", {kv, hidden}});
    all.push_back({p + "self_attn.o_proj.weight", "BF16", {hidden, hidden}});
    all.push_back({p + "mlp.gate_proj.weight", "BF16", {inter, hidden}});
    all.push_back({p + "mlp.up_proj.weight", "BF16", {inter, hidden}});
    all.push_back({p + "mlp.down_proj.weight", "BF16", {hidden, inter}});
    all.push_back({p + "input_layernorm.weight", "BF16", {hidden}});
    all.push_back({p + "post_attention_layernorm.weight", "BF16", {hidden}});
  }
  all.push_back({"model.norm.weight", "BF16", {hidden}});
  all.push_back({"lm_head.weight", "BF16", {vocab, hidden}});
  std::uint64_t total = 0;
  for (const auto& t : all) total += static_cast<std::uint64_t>(zp::checked_numel(t.shape)) * 2;
  const st::ShardPlan shards = st::plan_shards(all, total / 2 + 1);
  st::Index index;
  index.total_size = total;
  std::vector<std::uint16_t> values;
  for (std::size_t k = 0; k < shards.file_names.size(); ++k) {
    std::vector<st::PlannedTensor> mine;
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (shards.shard_of[i] == k) mine.push_back(all[i]);
    }
    st::Writer w(dir / shards.file_names[k], mine, {{"format", "pt"}});
    for (std::size_t i = 0; i < mine.size(); ++i) {
      values.resize(static_cast<std::size_t>(zp::checked_numel(mine[i].shape)));
      fill_bf16(values, k * 100 + i);
      w.write(std::as_bytes(std::span<const std::uint16_t>(values)));
      index.weight_map[mine[i].name] = shards.file_names[k];
    }
    w.commit();
  }
  const std::string text = st::serialize_index(index);
  FILE* f = std::fopen((dir / "model.safetensors.index.json").c_str(), "wb");
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  return dir;
}

// cp of one file, in 4 MiB pieces; with `durable`, the copy is flushed to disk (fsync) before it
// is closed, as zeropoint does before renaming an output into place.
void copy_file(const fs::path& from, const fs::path& to, bool durable) {
  std::vector<char> buffer(4 << 20);
  const int in = ::open(from.c_str(), O_RDONLY);
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (ssize_t n; (n = ::read(in, buffer.data(), buffer.size())) > 0;) {
    for (ssize_t done = 0; done < n;) done += ::write(out, buffer.data() + done, static_cast<std::size_t>(n - done));
  }
  if (durable) ::fsync(out);
  ::close(in);
  ::close(out);
}

// The same for every file in `from`, into `to`.
void copy_folder(const fs::path& from, const fs::path& to, bool durable) {
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) copy_file(e.path(), to / e.path().filename(), durable);
}

double timed(const auto& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The counters every whole-model benchmark reports: its rate, and its time as a percentage of the
// plain and the flushed copy's (fastest runs of each).
void report_against_copies(benchmark::State& state, std::uint64_t bytes, double best, double best_copy,
                           double best_durable) {
  state.counters["GBps"] = static_cast<double>(bytes) / best / 1e9;
  state.counters["copy_GBps"] = static_cast<double>(bytes) / best_copy / 1e9;
  state.counters["pct_of_copy"] = 100.0 * best_copy / best;
  state.counters["durable_copy_GBps"] = static_cast<double>(bytes) / best_durable / 1e9;
  state.counters["pct_of_durable_copy"] = 100.0 * best_durable / best;
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * state.iterations());
}

void BM_model_quantize(benchmark::State& state, const char* scheme) {
  const fs::path model = make_checkpoint();
  const fs::path out = bench_dir() / "out", copy = bench_dir() / "copy";
  zp::ModelQuantizeOptions options;
  options.plan.scheme = zp::Scheme::parse(scheme);
  std::uint64_t bytes = 0;
  double best = 1e30, best_copy = 1e30, best_durable = 1e30;
  for (auto _ : state) {
    best_copy = std::min(best_copy, timed([&] { copy_folder(model, copy, false); }));
    fs::remove_all(copy);
    best_durable = std::min(best_durable, timed([&] { copy_folder(model, copy, true); }));
    fs::remove_all(copy);
    zp::ModelReport r;
    const double t = timed([&] { r = zp::quantize_model(model, out, options); });
    fs::remove_all(out);
    bytes = r.bytes_in;
    best = std::min(best, t);
    state.SetIterationTime(t);
  }
  report_against_copies(state, bytes, best, best_copy, best_durable);
}

// A llama-shaped float32 GGUF of about 1.2 GiB: one 4096-wide layer, embeddings and output of a
// 16000-token vocabulary, norms (what llama-quantize's input looks like after convert_hf_to_gguf).
fs::path make_gguf() {
  const fs::path path = bench_dir() / "model-f32.gguf";
  if (fs::exists(path)) return path;
  fs::create_directories(bench_dir());
  const std::uint64_t hidden = 4096, inter = 11008, vocab = 16000, kv = 1024;
  using D = std::vector<std::uint64_t>;
  std::vector<zp::gguf::PlannedTensor> all{{"token_embd.weight", D{hidden, vocab}, zp::ggml::Type::f32}};
  for (const auto& [name, dims] : std::vector<std::pair<std::string, D>>{
           {"attn_q", {hidden, hidden}}, {"attn_k", {hidden, kv}}, {"attn_v", {hidden, kv}},
           {"attn_output", {hidden, hidden}}, {"ffn_gate", {hidden, inter}}, {"ffn_up", {hidden, inter}},
           {"ffn_down", {inter, hidden}}, {"attn_norm", {hidden}}, {"ffn_norm", {hidden}}}) {
    all.push_back({"blk.0." + name + ".weight", dims, zp::ggml::Type::f32});
  }
  all.push_back({"output_norm.weight", D{hidden}, zp::ggml::Type::f32});
  all.push_back({"output.weight", D{hidden, vocab}, zp::ggml::Type::f32});
  zp::gguf::Metadata metadata;
  metadata.set("general.architecture", zp::gguf::Value("llama"));
  metadata.set("general.file_type", zp::gguf::Value(std::uint32_t{0}));
  zp::gguf::Writer w(path, metadata, all);
  std::vector<std::uint16_t> bf16;
  std::vector<float> values;
  for (std::size_t i = 0; i < all.size(); ++i) {
    std::uint64_t n = 1;
    for (auto d : all[i].dims) n *= d;
    bf16.resize(n);
    fill_bf16(bf16, 1000 + i);
    values.resize(n);
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint32_t bits = std::uint32_t{bf16[k]} << 16;
      std::memcpy(&values[k], &bits, sizeof(float));
    }
    w.write({reinterpret_cast<const std::uint8_t*>(values.data()), n * sizeof(float)});
  }
  w.commit();
  return path;
}

// llama-quantize's job: the f32 GGUF requantized with zeropoint's default threads (2 here).
void BM_gguf_quantize(benchmark::State& state, const char* type) {
  const fs::path model = make_gguf();
  const fs::path out = bench_dir() / "out.gguf", copy = bench_dir() / "copy.gguf";
  zp::GgufQuantizeOptions options;
  options.plan.type = *zp::ggml::type_from_name(type);
  std::uint64_t bytes = 0;
  double best = 1e30, best_copy = 1e30, best_durable = 1e30;
  for (auto _ : state) {
    best_copy = std::min(best_copy, timed([&] { copy_file(model, copy, false); }));
    fs::remove(copy);
    best_durable = std::min(best_durable, timed([&] { copy_file(model, copy, true); }));
    fs::remove(copy);
    zp::ModelReport r;
    const double t = timed([&] { r = zp::quantize_gguf(model, out, options); });
    fs::remove(out);
    bytes = r.bytes_in;
    best = std::min(best, t);
    state.SetIterationTime(t);
  }
  report_against_copies(state, bytes, best, best_copy, best_durable);
}

BENCHMARK_CAPTURE(BM_gguf_quantize, q8_0, "q8_0")->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_gguf_quantize, q4_0, "q4_0")->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_gguf_quantize, q4_K, "q4_K")->Iterations(3)->UseManualTime()->Unit(benchmark::kMillisecond);

BENCHMARK_CAPTURE(BM_model_quantize, int8_channel, "int8:channel=0")->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_model_quantize, int4_block32, "int4:block=32")->Iterations(5)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace
