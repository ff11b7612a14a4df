//! The only definition of who may see a patient: its creator, and admins.

use diesel::{
    BoxableExpression, IntoSql as _, SelectableExpression, expression_methods::ExpressionMethods as _, pg::Pg,
    sql_types::Bool,
};

use uuid::Uuid;

use crate::{accounts::Role, db::schema::patients, viewer::Viewer};

/// Whose patients the viewer may see: `None` for everyone's (admins), else
/// the one creator (the viewer).
pub fn owner_filter(viewer: &Viewer) -> Option<Uuid> {
    match viewer.role {
        Role::Admin => None,
        Role::User => Some(viewer.user_id),
    }
}

/// The SQL condition "the viewer may see this patient", for any query whose
/// FROM clause has `patients`. (Hand-written statements in `db::patients`
/// bind `owner_filter` as `($n IS NULL OR created_by = $n)`.)
pub fn visible_to<QS>(viewer: &Viewer) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>>
where
    patients::created_by: SelectableExpression<QS>,
{
    match owner_filter(viewer) {
        None => Box::new(true.into_sql::<Bool>()),
        Some(owner) => Box::new(patients::created_by.eq(owner)),
    }
}
