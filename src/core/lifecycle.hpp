// The experiment lifecycle:
//
//   draft --start--> active <--start-- paused
//                    active --pause--> paused
//   active | paused --complete--> completed
//   any state --archive--> archived
//
// Only an active experiment splits traffic; paused and completed ones still answer
// (control, or the winner), draft and archived ones refuse to route.
#pragma once

#include <string>
#include <string_view>

namespace abtest {

enum class State { kDraft, kActive, kPaused, kCompleted, kArchived };
enum class Action { kStart, kPause, kComplete, kArchive };

const char* StateName(State state);
State ParseState(std::string_view name);  // throws kInvalidParameter for an unknown name

// The state after `action`, or an error (kWrongState) naming the experiment.
State Transition(const std::string& experiment, State from, Action action);

// ab_set_state: like the seed, only active, paused and archived may be set directly.
Action ActionForRequestedState(const std::string& experiment, State requested);

}  // namespace abtest
