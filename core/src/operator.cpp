// The runtime's side of weir::OperatorContext (weir/operator.hpp).
#include "weir/operator.hpp"

#include "weir/detail/runtime.hpp"

namespace weir {

OperatorContext::OperatorContext(detail::Stage& st, detail::BatchTally& tally, std::uint32_t partition)
    : st_(&st),
      tally_(&tally),
      info_(&st.info),
      clock_(st.clock),
      metrics_(detail::current_user_scratch),
      partition_(partition),
      listening_(st.listens()) {}

bool OperatorContext::stopping() const noexcept {
  return st_->stopping();
}

void OperatorContext::emit(const Event& e) {
  if (listening_) st_->emit(e);
}

void OperatorContext::fail_erased(const void* item, const std::type_info& type, std::exception_ptr error) {
  st_->fail_item(item, type, std::move(error), 1, *tally_);
}

}  // namespace weir
