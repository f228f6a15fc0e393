// The dashboard page served at GET / on the admin address: one self-contained HTML document (its CSS and JS inline,
// nothing fetched from elsewhere), built into the binary from src/ops/dashboard/index.html at build time.
// The page polls the admin API (docs/dashboard.md) with the token from the URL fragment (#token=...)
// as a Bearer header. Thread rules: none (static data).
#pragma once

#include <string_view>

namespace ringtun::ops {

std::string_view dashboard_html() noexcept;

}  // namespace ringtun::ops
