// zeropoint/formats/imatrix.hpp — llama.cpp importance matrices (what `llama-imatrix` writes and
// `llama-quantize --imatrix` reads), in both of llama.cpp's formats. The format is chosen by
// content: a file starting with "GGUF" is the GGUF format, anything else the legacy one.
//
// GGUF format (llama-imatrix since mid-2025): a GGUF file with, for each weight tensor NAME, the f32
// tensors "NAME.in_sum2" (ggml dims [n_per_row, n_mat]: per column, the sum over the calibration
// tokens of the squared activation) and "NAME.counts" (f32, n_mat elements: the tokens each matrix
// saw), and the metadata imatrix.datasets (array of strings), imatrix.chunk_count and
// imatrix.chunk_size (u32). Other tensors ("NAME.in_sum", statistics some forks add) are ignored.
//
// Legacy format (the ".dat" files), all little-endian: int32 entry count; per entry int32 name
// length, the name's bytes, int32 ncall, int32 value count n, n float32 values; then optionally
// int32 chunk count, int32 dataset-name length and the dataset name's bytes.
//
// Each entry's weights are exactly the float array llama-quantize hands to the quantizer for that
// tensor (tools/quantize/quantize.cpp, load_imatrix and load_legacy_imatrix):
//   GGUF:   weights[j*n_per_row + i] = in_sum2[j][i] / counts[j]  when counts[j] > 0,
//           and 1 for every column of matrix j otherwise (a matrix that saw no tokens);
//   legacy: weights[i] = values[i] / (float)ncall  when ncall > 0, values[i] otherwise.
// As llama-quantize does (src/llama-quant.cpp), a file whose weights hold a NaN or an infinity is
// refused, and a tensor of ggml dims ne is given an entry only if it has ne[0]*ne[2] weights
// (weights_for below).
//
// Files are hostile input: every count and length is checked against the bytes the file has left
// before anything is allocated; duplicate names, sizes that do not agree, missing partners, wrong
// types and truncated or over-long files are refused. Every problem is a zp::Error, one line
// naming the file, the entry and the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace zp::imatrix {

enum class Format {
  gguf,    ///< a GGUF file of NAME.in_sum2 / NAME.counts tensors
  legacy,  ///< the older binary format (.dat)
};
/// "gguf" or "legacy".
std::string_view format_name(Format format) noexcept;

/// The importance of each column of one weight tensor, per matrix (per expert for MoE tensors).
struct Entry {
  /// What llama-quantize passes to the quantizer: matrices x row_length floats, matrix-major
  /// (weights[j*row_length + i] is column i of matrix j), all finite.
  std::vector<float> weights;
  /// Columns of a matrix: the weight tensor's ne[0]. For a legacy entry, which does not record how
  /// its values split into matrices, the whole value count.
  std::uint64_t row_length = 0;
  /// Matrices: the weight tensor's ne[2] (1 for a plain matrix, the expert count for a stacked MoE
  /// tensor). For a legacy entry, 1.
  std::uint64_t matrices = 0;
};

class ImportanceMatrix {
 public:
  /// Reads and checks a whole file (GGUF through zeropoint's memory-mapped gguf::File).
  static ImportanceMatrix read(const std::filesystem::path& path);
  /// The same from the bytes of a whole file in memory; `file` names it in messages.
  static ImportanceMatrix parse(std::span<const std::uint8_t> bytes, std::string_view file);

  ImportanceMatrix();
  ImportanceMatrix(ImportanceMatrix&&) noexcept;
  ImportanceMatrix& operator=(ImportanceMatrix&&) noexcept;
  ~ImportanceMatrix();

  Format format() const noexcept;
  /// Number of entries (weight tensors).
  std::size_t size() const noexcept;
  /// Weight-tensor names, in the order the file gives them (for GGUF, the order of the in_sum2
  /// tensors).
  const std::vector<std::string>& names() const noexcept;
  /// The entry of a weight tensor ("blk.0.attn_q.weight"); nullptr when the file has none.
  const Entry* find(std::string_view tensor) const noexcept;

  /// The weights llama-quantize would use for a tensor of ggml dims `dims` (dims[0] contiguous):
  /// empty when the file has no entry for it; the entry's weights when it has ne[0]*ne[2] of them
  /// (ne[2] is 1 for tensors of fewer than three dimensions). Any other size throws zp::Error, as
  /// llama-quantize aborts, except for "token_embd.weight", which llama-quantize quantizes without
  /// the importance matrix (empty).
  std::span<const float> weights_for(std::string_view tensor, std::span<const std::uint64_t> dims) const;

  /// Calibration data sets: imatrix.datasets (GGUF), or the one dataset name a legacy file may end
  /// with (none when absent).
  const std::vector<std::string>& datasets() const noexcept;
  /// Chunks the statistics were collected on: imatrix.chunk_count (GGUF), or the legacy trailer's
  /// chunk count (0 when absent).
  std::uint64_t chunk_count() const noexcept;
  /// Tokens per chunk: imatrix.chunk_size (GGUF); 0 for legacy files, which do not record it.
  std::uint64_t chunk_size() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zp::imatrix
