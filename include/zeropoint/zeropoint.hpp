// zeropoint/zeropoint.hpp — everything in one include.
//
//   auto s = zp::Scheme::parse("int4:block=32:asym");
//   auto p = zp::compute_params(view, s);
//   auto q = zp::quantize(view, p);
//   auto y = zp::dequantize(q);
//   auto e = zp::measure_error(view, y);
#pragma once

#include "zeropoint/dtype.hpp"
#include "zeropoint/error.hpp"
#include "zeropoint/kernels.hpp"
#include "zeropoint/metrics.hpp"
#include "zeropoint/model.hpp"
#include "zeropoint/observe.hpp"
#include "zeropoint/params.hpp"
#include "zeropoint/quantize.hpp"
#include "zeropoint/scheme.hpp"
#include "zeropoint/tensor.hpp"
#include "zeropoint/threads.hpp"
