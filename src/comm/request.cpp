#include "comm/request.hpp"

#include <exception>

namespace strata {

Request& Request::operator=(Request&& other) noexcept {
  if (this != &other) {
    if (ops_) ops_->release(*this, std::uncaught_exceptions() > 0);
    ops_ = other.ops_;
    handle_ = other.handle_;
    other.ops_ = nullptr;
  }
  return *this;
}

Request::~Request() {
  if (ops_) ops_->release(*this, std::uncaught_exceptions() > 0);
}

}  // namespace strata
