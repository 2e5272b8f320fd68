// Writing queued sticky assignments to abtest.assignments, many rows per statement:
// the flush worker's batches, and a backend's own when the shared queue is full
// (sticky.cpp). Records are in the queue's format (assignment_queue.hpp).
#pragma once

#include "glue/pg.hpp"
#include "glue/shmem/assignment_queue.hpp"

namespace abtest::glue::assignment_batch {

// Writes the live records of `batch` (not forgotten, their experiment not cleared
// since): first assignments never overwrite a logged row, reassignments do. Runs
// PostgreSQL code directly (call it inside PgCall or from the worker); SPI must be
// connected and a snapshot active.
void WriteRecords(char* batch, Size bytes);

}  // namespace abtest::glue::assignment_batch
