//! Who may do what to a doctor: every signed-in user reads the directory and
//! adds to it; only a doctor's creator or an admin changes or removes it.

use uuid::Uuid;

use crate::{error::AppError, viewer::Viewer};

pub fn ensure_can_edit(viewer: &Viewer, created_by: Uuid) -> Result<(), AppError> {
    if viewer.is_admin() || viewer.user_id == created_by {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}
