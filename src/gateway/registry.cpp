#include "gateway/registry.hpp"

#include <algorithm>

namespace ringtun::gateway {

LocalRegistry::LocalRegistry() : table_(claims_.build()) {}

LocalRegistry::~LocalRegistry() = default;

const LocalRegistry::Slot* LocalRegistry::live(route::SessionRef session) const noexcept {
  if (!session.valid() || session.slot >= slots_.size()) return nullptr;
  const Slot& slot = slots_[session.slot];
  return slot.in_use && slot.generation == session.generation ? &slot : nullptr;
}

void LocalRegistry::open_session(const SessionInfo& info, std::function<void(const OpenResult&)> done) {
  OpenResult result;
  const auto owner_key = std::make_pair(info.owner.token, info.owner.agent_id);
  if (auto held = by_owner_.find(owner_key); held != by_owner_.end()) {
    result.holder = slots_[held->second].info;
    done(result);
    return;
  }
  std::uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& slot = slots_[index];
  slot.in_use = true;
  ++slot.generation;
  slot.info = info;
  by_owner_[owner_key] = index;
  result.ok = true;
  result.session = route::SessionRef{index, slot.generation};
  done(result);
}

void LocalRegistry::close_session(route::SessionRef session) {
  if (live(session) == nullptr) return;
  Slot& slot = slots_[session.slot];
  by_owner_.erase(std::make_pair(slot.info.owner.token, slot.info.owner.agent_id));
  slot.in_use = false;
  slot.info = SessionInfo{};
  free_slots_.push_back(session.slot);
  // A group member leaving changes who serves a route without releasing it: publish on any change.
  const std::uint64_t before = claims_.version();
  (void)claims_.release_session(session);
  if (claims_.version() != before) publish();
}

void LocalRegistry::claim(route::SessionRef session, std::vector<ClaimRequest> requests,
                          std::function<void(std::vector<route::ClaimResult>)> done) {
  std::vector<route::ClaimResult> results;
  results.reserve(requests.size());
  const Slot* slot = live(session);
  const std::uint64_t before = claims_.version();
  for (const ClaimRequest& request : requests) {
    if (slot == nullptr) {
      results.push_back(route::ClaimResult{route::ClaimError::kInvalid, {}});
      continue;
    }
    results.push_back(
        claims_.claim(slot->info.owner, session, request.key, request.service, request.service_rules, request.group));
  }
  if (claims_.version() != before) publish();
  done(std::move(results));
}

void LocalRegistry::release(route::SessionRef session, const std::vector<route::RouteKey>& keys) {
  const Slot* slot = live(session);
  if (slot == nullptr) return;
  bool changed = false;
  for (const route::RouteKey& key : keys) changed |= claims_.release(slot->info.owner, key);
  if (changed) publish();
}

void LocalRegistry::set_health(route::SessionRef session, const std::vector<HealthChange>& changes) {
  if (live(session) == nullptr) return;
  bool changed = false;
  for (const HealthChange& change : changes) changed |= claims_.set_health(session, change.key, change.up);
  if (changed) publish();
}

std::vector<SessionInfo> LocalRegistry::sessions() const {
  std::vector<SessionInfo> out;
  for (const Slot& slot : slots_) {
    if (slot.in_use) out.push_back(slot.info);
  }
  return out;
}

std::shared_ptr<const route::Table> LocalRegistry::table() const { return table_; }

void LocalRegistry::watch(std::function<void(std::shared_ptr<const route::Table>)> on_change) {
  on_change(table_);
  watchers_.push_back(std::move(on_change));
}

void LocalRegistry::publish() {
  table_ = claims_.build();
  for (const auto& watcher : watchers_) watcher(table_);
}

}  // namespace ringtun::gateway
