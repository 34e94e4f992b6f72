//! One suite for the SQL layer (`lanyard_core::db`), run on SQLite and on PostgreSQL, each
//! test on a database of its own: what every record kind's narrow interface promises, the
//! same on both. (The token store's `conformance_suite!` does the same for its backends.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod access;
mod audit;
mod clients;
mod factors;
mod keys;
mod mail;
mod migrations;
mod revocations;
mod signals;
mod users;

use std::future::Future;

use lanyard_core::db::Db;
use lanyard_core::testing::TestDatabase;

/// Runs `test` on a fresh, migrated database of `kind`, then removes the database.
pub(crate) async fn on<F, Fut>(kind: &str, test: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    let database = match kind {
        "sqlite" => TestDatabase::sqlite("lanyard-sql"),
        _ => TestDatabase::postgres("lanyard_sql").await,
    };
    let db = database.open().await;
    test(db).await;
    database.remove().await;
}

/// Every test of the suite, once on SQLite and once on PostgreSQL.
macro_rules! sql_suite {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod sqlite {
            #[tokio::test]
            async fn client_rows_keep_their_settings_as_one_document() {
                crate::migrations::client_rows_keep_their_settings_as_one_document("sqlite").await;
            }
            #[tokio::test]
            async fn queueing_waits_for_an_earlier_writer_of_the_channel() {
                crate::signals::queueing_waits_for_an_earlier_writer_of_the_channel("sqlite").await;
            }
            $(
                #[tokio::test]
                async fn $test() {
                    crate::on("sqlite", crate::$module::$test).await;
                }
            )*
        }
        mod postgres {
            #[tokio::test]
            async fn client_rows_keep_their_settings_as_one_document() {
                crate::migrations::client_rows_keep_their_settings_as_one_document("postgres").await;
            }
            #[tokio::test]
            async fn queueing_waits_for_an_earlier_writer_of_the_channel() {
                crate::signals::queueing_waits_for_an_earlier_writer_of_the_channel("postgres").await;
            }
            $(
                #[tokio::test]
                async fn $test() {
                    crate::on("postgres", crate::$module::$test).await;
                }
            )*
        }
    };
}

sql_suite!(
    users::a_user_reads_back_as_written,
    users::usernames_are_unique_in_any_letter_case,
    users::lists_page_in_username_order_and_search_literally,
    users::a_profile_write_loses_to_a_change_made_meanwhile,
    users::columns_change_only_for_a_user_that_exists,
    users::deleting_a_user_forgets_what_they_allowed,
    clients::a_client_reads_back_as_written,
    clients::client_ids_are_unique,
    clients::lists_page_in_id_order,
    clients::an_update_loses_to_a_change_made_meanwhile,
    clients::a_secret_changes_only_for_a_client_that_exists,
    clients::deleting_a_client_forgets_its_consents,
    clients::a_corrupt_row_is_an_error_not_a_client,
    clients::settings_left_out_of_a_row_take_their_defaults,
    users::consents_are_replaced_listed_and_withdrawn,
    keys::published_keys_are_newest_first_until_their_end,
    keys::only_one_first_key_per_algorithm_even_at_once,
    keys::secrets_in_the_clear_are_sealed_and_open_under_their_master_key_only,
    keys::key_states_change_and_keys_go,
    keys::the_first_server_secret_wins,
    revocations::a_revocation_already_covered_adds_no_row,
    revocations::live_revocations_end_with_their_tokens,
    revocations::an_unknown_kind_is_an_error,
    audit::events_are_filtered_newest_first_and_paged,
    audit::pruning_deletes_only_what_is_older_in_batches,
    factors::factors_read_back_and_seeds_are_sealed,
    factors::a_time_step_is_accepted_once,
    factors::recovery_codes_are_single_use,
    access::groups_read_back_with_unique_names_in_any_case,
    access::members_change_in_one_step_and_move_the_version,
    access::roles_are_held_directly_or_through_groups,
    mail::a_mail_is_sealed_while_it_waits_and_wiped_once_sent,
    mail::a_link_is_taken_once_before_it_expires,
    signals::streams_read_back_with_their_secret_sealed,
    signals::the_outbox_keeps_order_and_one_holder_per_channel,
    signals::the_outbox_takes_only_what_can_be_delivered,
);
