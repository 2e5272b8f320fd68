#include "core/lifecycle.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace abtest {
namespace {

const State kStates[] = {State::kDraft, State::kActive, State::kPaused, State::kCompleted, State::kArchived};

bool Allowed(State from, Action action) {
  try {
    Transition("e", from, action);
    return true;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kWrongState);
    EXPECT_NE(std::string(e.what()).find("\"e\""), std::string::npos) << "the message names the experiment";
    return false;
  }
}

TEST(Lifecycle, TransitionTable) {
  for (State s : kStates) {
    SCOPED_TRACE(StateName(s));
    EXPECT_EQ(Allowed(s, Action::kStart), s == State::kDraft || s == State::kPaused);
    EXPECT_EQ(Allowed(s, Action::kPause), s == State::kActive);
    EXPECT_EQ(Allowed(s, Action::kComplete), s == State::kActive || s == State::kPaused);
    EXPECT_TRUE(Allowed(s, Action::kArchive));
  }
  EXPECT_EQ(Transition("e", State::kDraft, Action::kStart), State::kActive);
  EXPECT_EQ(Transition("e", State::kActive, Action::kPause), State::kPaused);
  EXPECT_EQ(Transition("e", State::kPaused, Action::kStart), State::kActive);
  EXPECT_EQ(Transition("e", State::kPaused, Action::kComplete), State::kCompleted);
  EXPECT_EQ(Transition("e", State::kCompleted, Action::kArchive), State::kArchived);
}

TEST(Lifecycle, StateNamesRoundTrip) {
  for (State s : kStates) EXPECT_EQ(ParseState(StateName(s)), s);
  EXPECT_THROW(ParseState("running"), Error);
  EXPECT_THROW(ParseState("Active"), Error);
}

TEST(Lifecycle, OnlySomeStatesCanBeSetDirectly) {
  EXPECT_EQ(ActionForRequestedState("e", State::kActive), Action::kStart);
  EXPECT_EQ(ActionForRequestedState("e", State::kPaused), Action::kPause);
  EXPECT_EQ(ActionForRequestedState("e", State::kArchived), Action::kArchive);
  EXPECT_THROW(ActionForRequestedState("e", State::kCompleted), Error);
  EXPECT_THROW(ActionForRequestedState("e", State::kDraft), Error);
}

}  // namespace
}  // namespace abtest
