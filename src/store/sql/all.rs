// The SQL store shared by both backends, one file per area. Each backend file `include!`s this
// file after defining:
//   `Db` (the sqlx database), `DbRow` (its row type), `Backend` (struct with a `pool` field
//   for reads and a `writer` field, the pool every write transaction begins on),
//   `BACKEND_NAME`, `BEGIN_WRITE` (starts a transaction that will write; SQLite takes the write
//   lock up front so it waits on busy_timeout instead of failing on lock upgrade),
//   `BEGIN_SNAPSHOT` (a transaction whose reads all see one snapshot), `SHARE_LOCK` (suffix
//   that holds a read row lock until commit), `ROW_LOCK` (suffix that locks a selected row
//   until commit) and `DAY_OF_CREATED` (an expression giving `created_at` as `YYYY-MM-DD` in
//   UTC).
// The SQL here must stay portable between SQLite and Postgres: `$n` placeholders (SQLite reads
// them positionally), `ON CONFLICT`, `RETURNING`, TRUE/FALSE literals.
// It is included rather than generic over `sqlx::Database`: generic code would have to spell out
// the encode and decode bounds of every type it binds or reads.

use sqlx::Row as _;

include!("rows.rs");
include!("backend.rs");
include!("screenings.rs");
include!("banks.rs");
include!("accounts.rs");
include!("quarantine.rs");
include!("outbox.rs");
include!("audit.rs");
include!("tokens.rs");
include!("backfill.rs");
include!("console_users.rs");
include!("review.rs");
include!("user_reports.rs");
include!("appeals.rs");
include!("statements.rs");
include!("transparency.rs");
