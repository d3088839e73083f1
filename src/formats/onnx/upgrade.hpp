// Raising a model's default-domain operator set (src/formats/onnx/upgrade.cpp says how).
#pragma once

#include "formats/onnx/onnx_model.hpp"

namespace zp::onnx_io {

/// Rewrites `model` to operator set `target` (13 or 21 in practice) when it is older, keeping
/// what it computes. Throws zp::Error naming the model and the operator that cannot be moved.
void upgrade_opset(Model& model, int target);

}  // namespace zp::onnx_io
