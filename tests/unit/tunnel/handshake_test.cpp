#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "tunnel/handshake.hpp"

using namespace ringtun;
using namespace ringtun::tunnel;

namespace {
Result<ControlMessage> parse(const std::string& json, std::string* error) { return parse_control(as_bytes(json), error); }

const std::string kInstance = "0123456789abcdef0123456789abcdef";

std::string hello_json(const std::string& fields) {
  return R"({"type":"hello","version":2,"agent_id":"a","token":"t","instance":")" + kInstance + "\"," + fields + "}";
}
}  // namespace

TEST_CASE("hello, welcome and refusal round-trip through JSON") {
  Hello hello;
  hello.agent_id = "edge-1.x_y";
  hello.token = "s3cr\\et";
  hello.instance = make_instance_nonce();
  hello.conn_index = 2;
  hello.conn_count = 4;
  std::string error;
  auto back = parse(encode_hello(hello), &error);
  REQUIRE_MESSAGE(back, error);
  REQUIRE(back->type == ControlMessage::Type::kHello);
  CHECK(back->hello.agent_id == hello.agent_id);
  CHECK(back->hello.token == hello.token);
  CHECK(back->hello.instance == hello.instance);
  CHECK(back->hello.conn_index == 2);
  CHECK(back->hello.conn_count == 4);

  auto welcome = parse(encode_welcome({8, 3}), &error);
  REQUIRE(welcome);
  CHECK(welcome->welcome.gateway_cores == 8);
  CHECK(welcome->welcome.conn_index == 3);

  auto refused = parse(encode_refusal({RefusalCode::kIdInUse, "agent id 'x' is in use"}), &error);
  REQUIRE(refused);
  CHECK(refused->refusal.code == RefusalCode::kIdInUse);
  CHECK(refused->refusal.message == "agent id 'x' is in use");
  CHECK(refusal_is_fatal(RefusalCode::kBadToken));
  CHECK(refusal_is_fatal(RefusalCode::kIdInUse));
  CHECK(refusal_is_fatal(RefusalCode::kTokenRevoked));  // a reload removed the token: the agent exits, status 3
  CHECK_FALSE(refusal_is_fatal(RefusalCode::kBusy));
  CHECK_FALSE(refusal_is_fatal(RefusalCode::kShuttingDown));
  CHECK(service_refusal_is_retryable(RefusalCode::kPortTaken));
  CHECK(service_refusal_is_retryable(RefusalCode::kPortUnavailable));
  CHECK(service_refusal_is_retryable(RefusalCode::kHostTaken));
  CHECK_FALSE(service_refusal_is_retryable(RefusalCode::kHostNotAllowed));
  CHECK_FALSE(refusal_is_fatal(RefusalCode::kHostNotAllowed));
  CHECK_FALSE(service_refusal_is_retryable(RefusalCode::kPortNotAllowed));
  CHECK_FALSE(service_refusal_is_retryable(RefusalCode::kPortReserved));
}

TEST_CASE("instance nonces are 32 lower-case hex digits and differ") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string nonce = make_instance_nonce();
    REQUIRE(nonce.size() == kInstanceLength);
    for (char c : nonce) CHECK(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
    seen.insert(nonce);
  }
  CHECK(seen.size() == 100);
}

TEST_CASE("a service's own address lists travel in its claim; bad or oversized lists are refused") {
  std::string error;
  ServiceDecl web{"web", route::Kind::kHttp, 0, "app.test"};
  web.allow_from = *route::parse_cidr_list("10.0.0.0/8,2001:db8::/32", &error);
  web.deny_from = *route::parse_cidr_list("10.1.2.3", &error);
  const auto messages = encode_claims(std::vector<ServiceDecl>{web});
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].find("\"allow_from\":\"10.0.0.0/8,2001:db8::/32\"") != std::string::npos);
  auto parsed = parse(messages[0], &error);
  REQUIRE_MESSAGE(parsed, error);
  REQUIRE(parsed->claim.size() == 1);
  CHECK(parsed->claim[0] == web);

  auto refused = [&](const std::string& json, const char* says) {
    std::string why;
    CHECK_FALSE(parse(json, &why));
    CHECK_MESSAGE(why.find(says) != std::string::npos, why);
  };
  refused(R"({"type":"claim","services":[{"name":"a","kind":"tcp","port":1,"allow_from":"10.0.0.1/8"}]})",
          "claim: service \"a\": \"allow_from\": 10.0.0.1/8: host bits are set");
  refused(R"({"type":"claim","services":[{"name":"a","kind":"tcp","port":1,"deny_from":7}]})",
          "\"deny_from\" must be a string of networks");
  std::string many;
  for (int i = 0; i < 65; ++i) many += (many.empty() ? "" : ",") + std::string("10.0.0.") + std::to_string(i);
  refused(R"({"type":"claim","services":[{"name":"a","kind":"tcp","port":1,"deny_from":")" + many + R"("}]})",
          "has more than 64 networks");
}

TEST_CASE("claims of 1,024 services are split into messages that each fit one CONTROL frame, in order") {
  std::vector<ServiceDecl> services;
  for (int i = 0; i < 1024; ++i) {
    services.push_back(ServiceDecl{"service-number-" + std::to_string(i), route::Kind::kTcp,
                                   static_cast<std::uint16_t>(10000 + i), ""});
  }
  services.push_back(ServiceDecl{"site", route::Kind::kHttp, 0, "*.example.com"});
  const auto messages = encode_claims(services);
  REQUIRE(messages.size() > 1);
  std::vector<ServiceDecl> back;
  for (const std::string& m : messages) {
    CHECK(m.size() <= kMaxControlJson);
    std::string error;
    auto parsed = parse(m, &error);
    REQUIRE_MESSAGE(parsed, error);
    REQUIRE(parsed->type == ControlMessage::Type::kClaim);
    back.insert(back.end(), parsed->claim.begin(), parsed->claim.end());
  }
  CHECK(back == services);

  std::vector<ServiceStatus> statuses;
  for (int i = 0; i < 1024; ++i) {
    ServiceStatus s;
    s.name = "service-number-" + std::to_string(i);
    s.ok = i % 3 != 0;
    s.code = RefusalCode::kPortTaken;
    s.message = std::string(400, 'm');  // cut to kMaxStatusMessage on the wire
    statuses.push_back(s);
  }
  std::size_t count = 0;
  for (const std::string& m : encode_claimed(statuses)) {
    CHECK(m.size() <= kMaxControlJson);
    std::string error;
    auto parsed = parse(m, &error);
    REQUIRE_MESSAGE(parsed, error);
    for (const ServiceStatus& s : parsed->claimed) {
      CHECK(s.name == statuses[count].name);
      CHECK(s.ok == statuses[count].ok);
      if (!s.ok) {
        CHECK(s.code == RefusalCode::kPortTaken);
        CHECK(s.message.size() == kMaxStatusMessage);
      }
      ++count;
    }
  }
  CHECK(count == statuses.size());
  // No services: one message with an empty list (the agent asked for nothing, the gateway says so).
  CHECK(encode_claims({}).size() == 1);
}

TEST_CASE("hostile or malformed control messages are refused with a reason, never a crash") {
  struct Case {
    std::string json;
    const char* expect;
  } cases[] = {
      {"", "invalid JSON"},
      {"[1,2,3]", "not a JSON object"},
      {"{\"type\":5}", "\"type\""},
      {R"({"type":"goodbye"})", "unknown control message type"},
      {R"({"type":"hello","version":1,"agent_id":"a","token":"t","conn_index":0,"conn_count":1,"services":[]})",
       "version 1 is not supported"},
      {R"({"type":"hello","version":2,"agent_id":"","token":"t","instance":")" + kInstance +
           R"(","conn_index":0,"conn_count":1})",
       "agent_id"},
      {R"({"type":"hello","version":2,"agent_id":"a\nb","token":"t","instance":")" + kInstance +
           R"(","conn_index":0,"conn_count":1})",
       "agent_id"},
      {R"({"type":"hello","version":2,"agent_id":"a","token":"t","instance":"XYZ","conn_index":0,"conn_count":1})",
       "instance"},
      {R"({"type":"hello","version":2,"agent_id":"a","token":"t","conn_index":0,"conn_count":1})", "instance"},
      {hello_json(R"("conn_index":3,"conn_count":2)"), "conn_index"},
      {hello_json(R"("conn_index":0,"conn_count":0)"), "conn_count"},
      {R"({"type":"claim","services":{}})", "\"services\" must be an array"},
      {R"({"type":"claim","services":[{"name":"web","kind":"tcp","port":0}]})", "\"port\" must be an integer 1..65535"},
      {R"({"type":"claim","services":[{"name":"web","kind":"tcp","port":70000}]})", "1..65535"},
      {R"({"type":"claim","services":[{"name":"bad name","kind":"tcp","port":80}]})", "[A-Za-z0-9._-]"},
      {R"({"type":"claim","services":[{"name":"web","kind":"udp","port":80}]})", "\"kind\""},
      {R"({"type":"claim","services":[{"name":"web","port":80}]})", "\"kind\""},
      {R"({"type":"claim","services":[{"name":"web","kind":"http","host":"bad host"}]})", "\"host\""},
      {R"({"type":"claim","services":[{"name":"web","kind":"http","host":"a.*.b"}]})", "\"host\""},
      {R"({"type":"claim","services":[42]})", "must be an object"},
      {R"({"type":"claimed","services":[{"name":"web"}]})", "\"ok\""},
      {R"({"type":"welcome","gateway_cores":0,"conn_index":0})", "gateway_cores"},
      {std::string(20000, ' '), "larger than 16 KiB"},
      {std::string(5000, '[') + std::string(5000, ']'), "invalid JSON"},
      {"{\"type\":\"hello\",\"version\":2,\"agent_id\":\"\xff\xfe\"}", "invalid JSON"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.json.substr(0, 120));
    std::string error;
    auto r = parse(c.json, &error);
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == Errc::kParse);
    CHECK_MESSAGE(error.find(c.expect) != std::string::npos, error);
  }
  // Too many services in one claim are bounded.
  std::string many = R"({"type":"claim","services":[)";
  for (int i = 0; i < 1100; ++i) many += (i ? "," : "") + std::string(R"({"name":"s","kind":"tcp","port":1})");
  many += "]}";
  std::string error;
  CHECK_FALSE(parse(many, &error));
}

TEST_CASE("an http or tls service's host is folded to lower case without its trailing dot") {
  std::string error;
  auto r = parse(R"({"type":"claim","services":[{"name":"w","kind":"tls","host":"*.Example.COM."}]})", &error);
  REQUIRE_MESSAGE(r, error);
  REQUIRE(r->claim.size() == 1);
  CHECK(r->claim[0].kind == route::Kind::kTls);
  CHECK(r->claim[0].host == "*.example.com");
  CHECK(r->claim[0].port == 0);
}

TEST_CASE("a refusal message never echoes a secret it was not given") {
  std::string error;
  auto r = parse(R"({"type":"hello","version":2,"agent_id":"a","token":"super-secret","instance":")" + kInstance +
                     R"(","conn_index":9,"conn_count":1})",
                 &error);
  REQUIRE_FALSE(r);
  CHECK(error.find("super-secret") == std::string::npos);
}

TEST_CASE("token_revoked (a reload removed the token) has its name on the wire and comes back as itself") {
  std::string error;
  CHECK(std::string(refusal_code_name(RefusalCode::kTokenRevoked)) == "token_revoked");
  auto revoked = parse(encode_refusal({RefusalCode::kTokenRevoked, "removed"}), &error);
  REQUIRE(revoked);
  CHECK(revoked->refusal.code == RefusalCode::kTokenRevoked);
  CHECK(revoked->refusal.message == "removed");
}

TEST_CASE("the host refusal codes have their own names on the wire and come back as themselves") {
  CHECK(std::string(refusal_code_name(RefusalCode::kHostNotAllowed)) == "host_not_allowed");
  CHECK(std::string(refusal_code_name(RefusalCode::kHostTaken)) == "host_taken");
  std::vector<ServiceStatus> statuses(2);
  statuses[0] = ServiceStatus{"http-a.test", false, RefusalCode::kHostNotAllowed, "host a.test is not allowed"};
  statuses[1] = ServiceStatus{"tls-b.test", false, RefusalCode::kHostTaken, "host b.test is taken by another agent"};
  const std::vector<std::string> messages = encode_claimed(statuses);
  REQUIRE(messages.size() == 1);
  std::string error;
  auto parsed = parse(messages[0], &error);
  REQUIRE_MESSAGE(parsed, error);
  REQUIRE(parsed->claimed.size() == 2);
  CHECK(parsed->claimed[0].code == RefusalCode::kHostNotAllowed);
  CHECK(parsed->claimed[1].code == RefusalCode::kHostTaken);
  CHECK(parsed->claimed[1].message == statuses[1].message);
}

TEST_CASE("a service's group travels in its claim; health messages round-trip; bad ones are refused") {
  ServiceDecl web{"web", route::Kind::kTcp, 8080, ""};
  web.group = "blue";
  const auto claims = encode_claims(std::vector<ServiceDecl>{web});
  REQUIRE(claims.size() == 1);
  CHECK(claims[0].find("\"group\":\"blue\"") != std::string::npos);
  std::string error;
  auto parsed = parse(claims[0], &error);
  REQUIRE_MESSAGE(parsed, error);
  REQUIRE(parsed->claim.size() == 1);
  CHECK(parsed->claim[0] == web);
  // Without a group nothing is sent: older gateways see the claim they know.
  web.group.clear();
  CHECK(encode_claims(std::vector<ServiceDecl>{web})[0].find("group") == std::string::npos);

  const std::vector<ServiceHealth> health{{"web", false}, {"api", true}};
  const auto messages = encode_health(health);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0] == R"({"type":"health","services":[{"name":"web","up":false},{"name":"api","up":true}]})");
  parsed = parse(messages[0], &error);
  REQUIRE_MESSAGE(parsed, error);
  CHECK(parsed->type == ControlMessage::Type::kHealth);
  CHECK(parsed->health == health);

  auto refused = [&](const std::string& json, const char* says) {
    std::string why;
    CHECK_FALSE(parse(json, &why));
    CHECK_MESSAGE(why.find(says) != std::string::npos, why);
  };
  refused(R"({"type":"claim","services":[{"name":"a","kind":"tcp","port":1,"group":"no spaces"}]})",
          "claim: service \"a\": \"group\" must be 1..64 of [A-Za-z0-9._-]");
  refused(R"({"type":"claim","services":[{"name":"a","kind":"tcp","port":1,"group":""}]})", "\"group\" must be");
  refused(R"({"type":"claim","services":[{"name":"a","kind":"tcp","port":1,"group":7}]})", "\"group\" must be");
  refused(R"({"type":"health","services":[{"name":"web","up":"yes"}]})", "health: \"up\" must be true or false");
  refused(R"({"type":"health","services":[{"name":"a b","up":true}]})", "health: \"name\" must be");
  refused(R"({"type":"health","services":{}})", "health: \"services\" must be an array");
  CHECK(std::string(refusal_code_name(RefusalCode::kGroupMismatch)) == "group_mismatch");
  CHECK_FALSE(service_refusal_is_retryable(RefusalCode::kGroupMismatch));
}

TEST_CASE("a release names services; 1,024 names split into messages that fit; malformed ones are refused") {
  std::vector<std::string> names;
  for (int i = 0; i < 1024; ++i) names.push_back("service-with-a-long-name-" + std::to_string(i));
  const std::vector<std::string> messages = encode_release(names);
  CHECK(messages.size() > 1);
  std::vector<std::string> back;
  std::string error;
  for (const std::string& message : messages) {
    CHECK(message.size() <= kMaxControlJson);
    auto parsed = parse(message, &error);
    REQUIRE_MESSAGE(parsed, error);
    CHECK(parsed->type == ControlMessage::Type::kRelease);
    back.insert(back.end(), parsed->release.begin(), parsed->release.end());
  }
  CHECK(back == names);

  const char* bad[] = {
      R"({"type":"release"})",
      R"({"type":"release","services":"web"})",
      R"({"type":"release","services":[1]})",
      R"({"type":"release","services":["we b"]})",
      R"({"type":"release","services":[""]})",
      R"({"type":"release","services":[{"name":"web"}]})",
  };
  for (const char* json : bad) {
    error.clear();
    CHECK_FALSE(parse(json, &error));
    CHECK(error.starts_with("release: "));
  }
  std::string many = R"({"type":"release","services":[)";
  for (int i = 0; i < 1025; ++i) many += std::string(i ? "," : "") + "\"s\"";
  many += "]}";
  CHECK_FALSE(parse(many, &error));
  CHECK(error == "release: more than 1024 services");
}
