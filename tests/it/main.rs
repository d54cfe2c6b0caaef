//! vitalfarm's integration tests: one binary, so the workspace links once.
//! Each test boots the real server on a random port with its own database.

mod accounts;
mod alerts;
mod analytics;
mod api_keys;
mod audit;
mod bad_input;
mod bench;
mod cohort;
mod commands;
mod consents;
mod datasets;
mod demo;
mod devices;
mod ecg;
mod errors;
mod exhaustion;
mod exports;
mod farms;
mod faults;
mod fhir;
mod hardening;
mod imports;
mod isolation;
mod mashups;
mod members;
mod mqtt;
mod oauth;
mod readings;
mod service;
mod share_links;
mod shredding;
mod simulate;
mod stream;
mod subjects;
mod webhooks;
