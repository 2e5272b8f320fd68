#include "core/lifecycle.hpp"

#include "core/error.hpp"

namespace abtest {
namespace {

const char* ActionVerb(Action action) {
  switch (action) {
    case Action::kStart: return "start";
    case Action::kPause: return "pause";
    case Action::kComplete: return "complete";
    case Action::kArchive: return "archive";
  }
  return "change";
}

const char* AllowedFrom(Action action) {
  switch (action) {
    case Action::kStart: return "Only a draft or paused experiment can be started.";
    case Action::kPause: return "Only an active experiment can be paused.";
    case Action::kComplete: return "Only an active or paused experiment can be completed.";
    case Action::kArchive: return "";
  }
  return "";
}

}  // namespace

const char* StateName(State state) {
  switch (state) {
    case State::kDraft: return "draft";
    case State::kActive: return "active";
    case State::kPaused: return "paused";
    case State::kCompleted: return "completed";
    case State::kArchived: return "archived";
  }
  return "unknown";
}

State ParseState(std::string_view name) {
  for (State s : {State::kDraft, State::kActive, State::kPaused, State::kCompleted, State::kArchived})
    if (name == StateName(s)) return s;
  throw Error(ErrorKind::kInvalidParameter, "unknown experiment state " + Quoted(std::string(name)),
              {}, "The states are draft, active, paused, completed and archived.");
}

State Transition(const std::string& experiment, State from, Action action) {
  bool allowed = false;
  State to = from;
  switch (action) {
    case Action::kStart:
      allowed = from == State::kDraft || from == State::kPaused;
      to = State::kActive;
      break;
    case Action::kPause:
      allowed = from == State::kActive;
      to = State::kPaused;
      break;
    case Action::kComplete:
      allowed = from == State::kActive || from == State::kPaused;
      to = State::kCompleted;
      break;
    case Action::kArchive:
      allowed = true;  // archiving is always possible, and archiving twice changes nothing
      to = State::kArchived;
      break;
  }
  if (!allowed)
    throw Error(ErrorKind::kWrongState,
                std::string("cannot ") + ActionVerb(action) + " experiment " + Quoted(experiment) +
                    ": it is " + StateName(from),
                AllowedFrom(action));
  return to;
}

Action ActionForRequestedState(const std::string& experiment, State requested) {
  switch (requested) {
    case State::kActive: return Action::kStart;
    case State::kPaused: return Action::kPause;
    case State::kArchived: return Action::kArchive;
    case State::kCompleted:
      throw Error(ErrorKind::kInvalidParameter,
                  "cannot set experiment " + Quoted(experiment) + " to completed directly", {},
                  "Use ab_complete(name, winner) to complete an experiment.");
    case State::kDraft:
      break;
  }
  throw Error(ErrorKind::kInvalidParameter,
              "cannot set experiment " + Quoted(experiment) + " back to draft", {},
              "Only active, paused and archived can be set with ab_set_state.");
}

}  // namespace abtest
