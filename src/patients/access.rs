//! The only definition of who may see a patient: its creator, and admins.

use diesel::{
    BoxableExpression, IntoSql as _, SelectableExpression, expression_methods::ExpressionMethods as _, pg::Pg,
    sql_types::Bool,
};

use crate::{accounts::Role, db::schema::patients, viewer::Viewer};

/// The SQL condition "the viewer may see this patient", for any query whose
/// FROM clause has `patients`.
pub fn visible_to<QS>(viewer: &Viewer) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>>
where
    patients::created_by: SelectableExpression<QS>,
{
    match viewer.role {
        Role::Admin => Box::new(true.into_sql::<Bool>()),
        Role::User => Box::new(patients::created_by.eq(viewer.user_id)),
    }
}
