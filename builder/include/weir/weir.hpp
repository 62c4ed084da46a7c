#pragma once
/// \file Everything a Weir user needs: include this one header and link weir::weir.

#include "weir/batch.hpp"
#include "weir/clock.hpp"
#include "weir/concepts.hpp"
#include "weir/error.hpp"
#include "weir/interceptor.hpp"
#include "weir/operator.hpp"
#include "weir/pipeline.hpp"
#include "weir/report.hpp"
#include "weir/snapshot.hpp"
#include "weir/trace_context.hpp"
#include "weir/user_metrics.hpp"

namespace weir {
using ops::PushSource;
}
