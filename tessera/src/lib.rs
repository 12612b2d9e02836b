mod codec;
mod key;
mod signing;
mod tagged;
mod value;
pub mod config;
