// ResponseReader: see response_reader.hpp.
#include "http/response_reader.hpp"

namespace ringtun::http {

void ResponseReader::start(bool request_was_head) noexcept {
  state_ = State::kHead;
  request_was_head_ = request_was_head;
  keep_alive_ = false;
  raw_.clear();
  scanner_.reset();
  problem_ = {};
}

ResponseReader::Step ResponseReader::feed(std::string_view input) noexcept {
  switch (state_) {
    case State::kHead: {
      const std::size_t before = raw_.size();
      // Never hold more than a head can be: what lies past the limit is not needed to know it is too large.
      const std::size_t room = kMaxHeadBytes + 1 - before;
      const std::size_t take = input.size() < room ? input.size() : room;
      raw_.append(input.data(), take);
      switch (scanner_.scan(raw_, kMaxHeadBytes)) {
        case HeadScanner::State::kNeedMore:
          return {Event::kNeedMore, take};
        case HeadScanner::State::kTooLarge:
          problem_ = {502, "response head too large"};
          state_ = State::kFailed;
          return {Event::kError, 0};
        case HeadScanner::State::kComplete:
          break;
      }
      const std::size_t end = scanner_.head_length();
      const std::size_t used = end - before;
      raw_.resize(end);
      const std::string_view head(raw_.data() + scanner_.head_start(), end - scanner_.head_start());
      if (Problem p = parse_response_head(head, request_was_head_, &head_)) {
        problem_ = p;
        state_ = State::kFailed;
        return {Event::kError, 0};
      }
      scanner_.reset();
      if (head_.interim) {
        // The next bytes start another head; the parsed one stays readable until then (raw_ is cleared lazily).
        state_ = State::kEndPending;
        return {Event::kHead, used};
      }
      keep_alive_ = head_.keep_alive;
      if (head_.switching) {
        state_ = State::kUpgraded;
        return {Event::kHead, used};
      }
      framer_.start(head_.body, head_.content_length);
      state_ = framer_.done() ? State::kEndPending : State::kBody;
      return {Event::kHead, used};
    }
    case State::kEndPending:
      if (head_.interim) {
        // After an interim head: assemble the next one.
        raw_.clear();
        state_ = State::kHead;
        return feed(input);
      }
      state_ = State::kDone;
      return {Event::kEnd, 0};
    case State::kBody: {
      const BodyFramer::Step step = framer_.feed(input);
      if (step.error != nullptr && step.used == 0) {
        problem_ = {502, step.error};
        state_ = State::kFailed;
        return {Event::kError, 0};
      }
      if (step.done) state_ = State::kEndPending;
      if (step.error != nullptr) {
        // The valid bytes before the error go first; the next feed reports the error.
        problem_ = {502, step.error};
        state_ = State::kFailed;
      }
      return {Event::kBody, step.used};
    }
    case State::kUpgraded:
      return {Event::kUpgraded, 0};
    case State::kFailed:
      return {Event::kError, 0};
    case State::kIdle:
    case State::kDone:
      return {Event::kEnd, 0};
  }
  return {Event::kError, 0};
}

void ResponseReader::release() noexcept { std::string().swap(raw_); }

bool ResponseReader::end_of_input() noexcept {
  if (state_ == State::kBody && framer_.end_of_input()) {
    state_ = State::kDone;
    return true;
  }
  return state_ == State::kDone || state_ == State::kEndPending;
}

}  // namespace ringtun::http
