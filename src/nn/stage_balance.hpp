#pragma once
// Pipeline stage boundaries for a model made of a chain of layers (conv blocks, recurrent layers): contiguous
// layer ranges, balanced by cost.
#include <vector>

namespace strata {

// Layers per stage for `stages` stages over layers of cost unit_costs[i] (in order), the last stage also paying
// `last_extra` (the classifier head): the split whose most expensive stage is cheapest; among equals, the one
// that puts layers on earlier stages. Every stage holds at least one layer. Throws unless 1 <= stages <= layers.
std::vector<int> balanced_stage_counts(const std::vector<double>& unit_costs, double last_extra, int stages);

}  // namespace strata
