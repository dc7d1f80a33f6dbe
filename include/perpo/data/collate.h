// Collation moved to the LibTorch module `batch` (perpo/batch/collate.h), so that the record
// readers of `data` build without LibTorch. This header keeps the old include path working for
// code that links perpo_batch.
#pragma once

#include "perpo/batch/collate.h"
