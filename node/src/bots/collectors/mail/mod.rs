//! The `intelmq.bots.collectors.mail` modules: unread mails over IMAP, as attachments, bodies or
//! the URLs they contain. [`lib`] is IntelMQ's shared `MailCollectorBot`, [`imap`] our client.

pub mod collector_mail_attach;
pub mod collector_mail_body;
pub mod collector_mail_url;
pub mod imap;
pub mod lib;
