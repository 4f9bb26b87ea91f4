//! Translation between the wire and the daemon core: a decoded [`Request`] becomes an
//! [`Action`], and the core's answer becomes the reply bytes (spec §3.2, §3.3).
//!
//! This module is pure: no socket, no I/O, no knowledge of projects. It must not decide
//! anything the core decides (whether a project exists, whether a file is valid); it only
//! checks that the request carries the values its command needs.

use etmem_host::action::HeatmapFormat;
use etmem_host::{Action, ActionError, Reply};
use etmem_proto::frame::{Command, Request};
use etmem_proto::reply::{OptResult, encode_reply};
use thiserror::Error;

/// Why a well-formed frame does not make an action. C etmemd answers these with
/// `error: invalid parameters` (OPT_INVAL); we add this reason on the next line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// `cmd` is a number no command has.
    #[error("request: unknown command number {cmd}, expected 0..=9")]
    UnknownCommand {
        /// the number received
        cmd: i64,
    },
    /// A value the command needs was sent as `-`.
    #[error("{command}: {what} is missing (field `{field}` was sent as `-`)")]
    MissingValue {
        /// the command, as the user types it (`obj add`, `engine`)
        command: &'static str,
        /// what is missing, in words (`config file`, `project name`)
        what: &'static str,
        /// the wire field that carried `-`
        field: &'static str,
    },
    /// `project stats` with an output format (in `eng_cmd`) other than `json`.
    #[error(
        "project stats: unknown output format `{found}` (field `eng_cmd`), expected `json` or `-`"
    )]
    StatsFormat {
        /// the value received
        found: String,
    },
    /// `project heatmap` with an output form (in `eng_cmd`) it does not know.
    #[error(
        "project heatmap: unknown output format `{found}` (field `eng_cmd`), expected `text`, `svg`, `json` or `-`"
    )]
    HeatmapFormat {
        /// the value received
        found: String,
    },
}

impl From<CodecError> for ActionError {
    fn from(e: CodecError) -> ActionError {
        ActionError::new(OptResult::Inval, e.to_string())
    }
}

fn required(
    value: &Option<String>,
    command: &'static str,
    what: &'static str,
    field: &'static str,
) -> Result<String, CodecError> {
    value.clone().ok_or(CodecError::MissingValue {
        command,
        what,
        field,
    })
}

/// The action a request asks for.
pub fn request_to_action(req: &Request) -> Result<Action, CodecError> {
    let command = req
        .command()
        .ok_or(CodecError::UnknownCommand { cmd: req.cmd })?;
    Ok(match command {
        Command::ObjAdd => Action::ObjAdd {
            file: required(&req.file_name, "obj add", "config file", "file_name")?,
        },
        Command::ObjDel => Action::ObjDel {
            file: required(&req.file_name, "obj del", "config file", "file_name")?,
        },
        Command::ProjectStart => Action::ProjectStart {
            project: required(&req.proj_name, "project start", "project name", "proj_name")?,
        },
        Command::ProjectStop => Action::ProjectStop {
            project: required(&req.proj_name, "project stop", "project name", "proj_name")?,
        },
        Command::ProjectShow => Action::ProjectShow {
            project: req.proj_name.clone(),
        },
        Command::ProjectShowJson => Action::ProjectShowJson {
            project: req.proj_name.clone(),
        },
        Command::ProjectStats => Action::ProjectStats {
            project: required(&req.proj_name, "project stats", "project name", "proj_name")?,
            json: match req.eng_cmd.as_deref() {
                None => false,
                Some("json") => true,
                Some(other) => {
                    return Err(CodecError::StatsFormat {
                        found: other.to_string(),
                    });
                }
            },
        },
        Command::EngineCmd | Command::EngineCmdJson => Action::EngineCmd {
            project: required(&req.proj_name, "engine", "project name", "proj_name")?,
            engine: required(&req.eng_name, "engine", "engine name", "eng_name")?,
            cmd: required(&req.eng_cmd, "engine", "engine command", "eng_cmd")?,
            task: req.task_name.clone(),
            json: command == Command::EngineCmdJson,
        },
        Command::TaskHeatmap => Action::TaskHeatmap {
            project: required(
                &req.proj_name,
                "project heatmap",
                "project name",
                "proj_name",
            )?,
            engine: req.eng_name.clone(),
            task: required(&req.task_name, "project heatmap", "task name", "task_name")?,
            format: match req.eng_cmd.as_deref() {
                None => HeatmapFormat::Text,
                Some(word) => {
                    HeatmapFormat::from_word(word).ok_or_else(|| CodecError::HeatmapFormat {
                        found: word.to_string(),
                    })?
                }
            },
        },
    })
}

/// The reply bytes for the core's answer: output, then on failure the fixed C text and our
/// reason on its own line, then the tag byte.
pub fn encode_result(result: &Result<Reply, ActionError>) -> Vec<u8> {
    match result {
        Ok(reply) => encode_reply(reply.output.as_bytes(), OptResult::Success, None),
        Err(e) => encode_reply(e.output.as_bytes(), e.result, Some(&e.detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(frame: &str) -> Request {
        Request::decode(frame.as_bytes()).expect("valid frame")
    }

    #[test]
    fn every_command_maps_to_its_action() {
        assert_eq!(
            request_to_action(&req(
                "proj_name - file_name /etc/etmem/a.ini cmd 0 eng_name - eng_cmd - task_name -"
            )),
            Ok(Action::ObjAdd {
                file: "/etc/etmem/a.ini".into()
            })
        );
        assert_eq!(
            request_to_action(&req(
                "proj_name - file_name rel.ini cmd 1 eng_name - eng_cmd - task_name -"
            )),
            Ok(Action::ObjDel {
                file: "rel.ini".into()
            })
        );
        assert_eq!(
            request_to_action(&req(
                "proj_name p1 file_name - cmd 2 eng_name - eng_cmd - task_name -"
            )),
            Ok(Action::ProjectStart {
                project: "p1".into()
            })
        );
        assert_eq!(
            request_to_action(&req(
                "proj_name p2 file_name - cmd 3 eng_name - eng_cmd - task_name -"
            )),
            Ok(Action::ProjectStop {
                project: "p2".into()
            })
        );
        assert_eq!(
            request_to_action(&req(
                "proj_name - file_name - cmd 4 eng_name - eng_cmd - task_name -"
            )),
            Ok(Action::ProjectShow { project: None })
        );
        assert_eq!(
            request_to_action(&req(
                "proj_name p3 file_name - cmd 4 eng_name - eng_cmd - task_name -"
            )),
            Ok(Action::ProjectShow {
                project: Some("p3".into())
            })
        );
        assert_eq!(
            request_to_action(&req(
                "proj_name test file_name - cmd 5 eng_name cslide eng_cmd showtaskpages task_name t1"
            )),
            Ok(Action::EngineCmd {
                project: "test".into(),
                engine: "cslide".into(),
                cmd: "showtaskpages".into(),
                task: Some("t1".into()),
                json: false,
            })
        );
        assert_eq!(
            request_to_action(&req(
                "proj_name test file_name - cmd 8 eng_name cslide eng_cmd showtaskpages task_name t1"
            )),
            Ok(Action::EngineCmd {
                project: "test".into(),
                engine: "cslide".into(),
                cmd: "showtaskpages".into(),
                task: Some("t1".into()),
                json: true,
            })
        );
        assert_eq!(
            request_to_action(&req(
                "proj_name test file_name - cmd 9 eng_name - eng_cmd svg task_name t1"
            )),
            Ok(Action::TaskHeatmap {
                project: "test".into(),
                engine: None,
                task: "t1".into(),
                format: HeatmapFormat::Svg,
            })
        );
        assert_eq!(
            request_to_action(&req(
                "proj_name test file_name - cmd 9 eng_name slide eng_cmd - task_name t1"
            )),
            Ok(Action::TaskHeatmap {
                project: "test".into(),
                engine: Some("slide".into()),
                task: "t1".into(),
                format: HeatmapFormat::Text,
            })
        );
        assert_eq!(
            request_to_action(&req(
                "proj_name test file_name - cmd 5 eng_name cslide eng_cmd showhostpages task_name -"
            )),
            Ok(Action::EngineCmd {
                project: "test".into(),
                engine: "cslide".into(),
                cmd: "showhostpages".into(),
                task: None,
                json: false,
            })
        );
    }

    #[test]
    fn missing_values_are_inval_with_a_reason() {
        let cases = [
            (
                "proj_name - file_name - cmd 0 eng_name - eng_cmd - task_name -",
                "obj add: config file is missing (field `file_name` was sent as `-`)",
            ),
            (
                "proj_name p file_name - cmd 1 eng_name - eng_cmd - task_name -",
                "obj del: config file is missing (field `file_name` was sent as `-`)",
            ),
            (
                "proj_name - file_name f cmd 2 eng_name - eng_cmd - task_name -",
                "project start: project name is missing (field `proj_name` was sent as `-`)",
            ),
            (
                "proj_name - file_name - cmd 3 eng_name - eng_cmd - task_name -",
                "project stop: project name is missing (field `proj_name` was sent as `-`)",
            ),
            (
                "proj_name - file_name - cmd 5 eng_name e eng_cmd c task_name -",
                "engine: project name is missing (field `proj_name` was sent as `-`)",
            ),
            (
                "proj_name p file_name - cmd 5 eng_name - eng_cmd c task_name -",
                "engine: engine name is missing (field `eng_name` was sent as `-`)",
            ),
            (
                "proj_name p file_name - cmd 5 eng_name e eng_cmd - task_name t",
                "engine: engine command is missing (field `eng_cmd` was sent as `-`)",
            ),
            (
                "proj_name p file_name - cmd 8 eng_name e eng_cmd - task_name t",
                "engine: engine command is missing (field `eng_cmd` was sent as `-`)",
            ),
            (
                "proj_name - file_name - cmd 9 eng_name - eng_cmd - task_name t",
                "project heatmap: project name is missing (field `proj_name` was sent as `-`)",
            ),
            (
                "proj_name p file_name - cmd 9 eng_name - eng_cmd - task_name -",
                "project heatmap: task name is missing (field `task_name` was sent as `-`)",
            ),
            (
                "proj_name p file_name - cmd 9 eng_name - eng_cmd png task_name t",
                "project heatmap: unknown output format `png` (field `eng_cmd`), expected `text`, `svg`, `json` or `-`",
            ),
        ];
        for (frame, detail) in cases {
            let err: ActionError = request_to_action(&req(frame)).expect_err(frame).into();
            assert_eq!(err.result, OptResult::Inval, "{frame}");
            assert_eq!(err.detail, detail, "{frame}");
        }
    }

    #[test]
    fn project_stats_takes_json_or_nothing_in_eng_cmd() {
        let stats = |eng_cmd: &str| {
            request_to_action(&req(&format!(
                "proj_name p file_name - cmd 6 eng_name - eng_cmd {eng_cmd} task_name -"
            )))
        };
        assert_eq!(
            stats("-"),
            Ok(Action::ProjectStats {
                project: "p".into(),
                json: false
            })
        );
        assert_eq!(
            stats("json"),
            Ok(Action::ProjectStats {
                project: "p".into(),
                json: true
            })
        );
        let e: ActionError = stats("yaml").expect_err("yaml").into();
        assert_eq!(e.result, OptResult::Inval);
        assert_eq!(
            e.detail,
            "project stats: unknown output format `yaml` (field `eng_cmd`), expected `json` or `-`"
        );
    }

    #[test]
    fn unknown_command_is_inval() {
        for (frame, n) in [
            (
                "proj_name p file_name - cmd 10 eng_name - eng_cmd - task_name -",
                10,
            ),
            (
                "proj_name p file_name - cmd 99999 eng_name - eng_cmd - task_name -",
                99999,
            ),
        ] {
            let e = request_to_action(&req(frame)).expect_err(frame);
            assert_eq!(e, CodecError::UnknownCommand { cmd: n });
            let reply = encode_result(&Err(e.into()));
            let mut expected = format!(
                "error: invalid parameters\nrequest: unknown command number {n}, expected 0..=9"
            )
            .into_bytes();
            expected.push(0xFE);
            assert_eq!(reply, expected);
        }
    }

    #[test]
    fn replies_are_output_text_detail_tag() {
        let ok = encode_result(&Ok(Reply {
            output: "project: p\n".into(),
        }));
        assert_eq!(ok, b"project: p\n\xff");
        let mut err = ActionError::new(OptResult::ProNoExist, "project `x` is not added");
        err.output = "partial\n".into();
        assert_eq!(
            encode_result(&Err(err)),
            b"partial\nerror: project is not exist\nproject `x` is not added\xfe"
        );
        assert_eq!(
            encode_result(&Err(ActionError::new(OptResult::ProStarted, ""))),
            b"error: project has been started\xfe"
        );
    }
}
