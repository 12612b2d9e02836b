//! Numbers as a Python program holds them.

use tessera::Map;

/// Rewrites the numbers of `data` as Python's `json.loads` and then
/// `json.dumps` would write them (see [`tessera::tagged::python_numbers`]):
/// the session Flask would hold, and the cookie it would sign, for the same
/// JSON.
pub(crate) fn as_python_reads_it(data: &mut Map) {
    data.values_mut().for_each(tessera::tagged::python_numbers);
}
