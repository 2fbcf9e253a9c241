//! Where `init` and `uninstall` get their answers: a terminal (stdin, else `/dev/tty`,
//! so `curl | sh` still gets a wizard), `--yes`, or no terminal at all (defaults).

use std::fs::{File, OpenOptions};
use std::io::IsTerminal;

use console::Term;
use dialoguer::theme::ColorfulTheme;

/// Where answers come from.
pub(crate) enum Prompter {
    /// A terminal to ask on.
    Term(Term),
    /// `--yes`: flags and defaults, no questions.
    Yes,
    /// No terminal at all: defaults, and the user was told.
    NoTerminal,
}

impl Prompter {
    /// Stdin when it is a terminal; else `/dev/tty`; else nothing.
    pub(crate) fn open(yes: bool) -> Prompter {
        if yes {
            return Prompter::Yes;
        }
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            return Prompter::Term(Term::stderr());
        }
        let tty = (
            File::open("/dev/tty"),
            OpenOptions::new().write(true).open("/dev/tty"),
        );
        match tty {
            (Ok(r), Ok(w)) => Prompter::Term(Term::read_write_pair(r, w)),
            _ => Prompter::NoTerminal,
        }
    }

    pub(crate) fn term(&self) -> Option<&Term> {
        match self {
            Prompter::Term(t) => Some(t),
            _ => None,
        }
    }

    /// Ask a yes/no question; without a terminal the default is the answer.
    pub(crate) fn confirm(&self, question: &str, default: bool) -> anyhow::Result<bool> {
        match self.term() {
            Some(t) => Ok(dialoguer::Confirm::with_theme(&ColorfulTheme::default())
                .with_prompt(question)
                .default(default)
                .interact_on(t)?),
            None => Ok(default),
        }
    }
}
