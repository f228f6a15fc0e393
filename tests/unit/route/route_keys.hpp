// Route keys for tests: tcp(8080), http("app.test"), tls("db.test").
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "route/route.hpp"

namespace ringtun::route::test {

inline RouteKey tcp(std::uint16_t port) { return RouteKey{Kind::kTcp, port, {}}; }
inline RouteKey http(std::string host) { return RouteKey{Kind::kHttp, 0, std::move(host)}; }
inline RouteKey tls(std::string host) { return RouteKey{Kind::kTls, 0, std::move(host)}; }

}  // namespace ringtun::route::test
