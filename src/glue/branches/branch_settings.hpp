// A branch's settings against PostgreSQL's GUC machinery: checked when an
// administrator sets them, applied like SET LOCAL when a transaction enters the branch.
#pragma once

#include <string>

#include "core/branch_settings.hpp"

namespace abtest::glue::branch_settings {

// Refuses what an ordinary session could not SET LOCAL: an unknown parameter (42704),
// one only a superuser or a GRANT SET may change (42501, even for a superuser: any
// role may call ab_enter), one that cannot be changed in a session (55P02), and a value
// the parameter's own parsing and check hook refuse (22023). Changes nothing.
void Validate(const BranchSettings& settings, const std::string& experiment, const std::string& branch);

// Sets each parameter for the rest of the current (sub)transaction, as SET LOCAL does:
// undone at commit, at rollback and by the rollback of an enclosing savepoint.
void ApplyLocally(const BranchSettings& settings, const std::string& experiment, const std::string& branch);

}  // namespace abtest::glue::branch_settings
