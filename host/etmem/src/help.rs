//! The usage and help texts of the C client, byte for byte (spec §2.1-§2.4).
//!
//! These strings are part of the compatibility contract: scripts and tests compare them.
//! They are copied from the spec with its `\n` escapes kept, including C etmem's wording
//! quirks ("add or del" in the project notes). Do not reword, reflow or fix them here.

/// `etmem` usage (spec §2.1), printed for `etmem`, `etmem help` and unknown objects.
pub const USAGE: &str = "\nUsage:\n    etmem OBJECT COMMAND\n    etmem help\n\nParameters:\n    OBJECT  := { project | obj | engine }\n    COMMAND := { add | del | start | stop | show | eng_cmd | help }\n";

/// `etmem obj` help (spec §2.2).
pub const OBJ_HELP: &str = "\nUsage:\n    etmem obj add [options]\n    etmem obj del [options]\n    etmem obj help [options]\n\nOptions:\n    -f|--file <conf_file>       Add configuration file\n    -s|--socket <socket_name>   Socket name to connect\n\nNotes:\n    1. Configuration file must be given.\n    2. Socket name must be given.\n";

/// `etmem project` help (spec §2.3). Note 1's "add or del" is C etmem's own text.
pub const PROJECT_HELP: &str = "\nUsage:\n    etmem project start [options]\n    etmem project stop [options]\n    etmem project show [options]\n    etmem project help\n\nOptions:\n    -n|--name <proj_name>     Add project name\n    -s|--socket <socket_name> Socket name to connect\n\nNotes:\n    1. Project name and socket name must be given when execute add or del option.\n    2. Socket name must be given when execute show option.\n";

/// `etmem engine` help (spec §2.4).
pub const ENGINE_HELP: &str = "\nUsage:\n    etmem engine eng_cmd [options]\n    etmem engine help\n\nOptions:\n    -n|--proj_name <proj_name> project engine belongs to\n    -s|--socket <socket_name> socket name to connect\n    -e|--engine <engine_name> engine to execute cmd\n    -t|--task_name <task_name> task for cmd\n\nNotes:\n    1. project name must be given.\n    2. socket name must be given.\n    3. engine name must be given.\n    4. engine cmd must be given.\n    5. eng_cmd is supported by engine own.\n    6. cslide engine eng_cmd: showtaskpages, showhostpages.\n";

/// `etmem project heatmap` help (ours; C etmem has no such command), printed after a
/// failure of its command line. C's texts above stay as they are.
pub const HEATMAP_HELP: &str = "\nUsage:\n    etmem project heatmap [options]\n\nOptions:\n    -n|--name <proj_name>      project of the task\n    -t|--task_name <task_name> task to show\n    -e|--engine <engine_name>  engine of the task, when its name is not unique\n    -s|--socket <socket_name>  socket name to connect\n    -o|--output <form>         text (default), svg or json\n    -f|--file <file>           write the output to this file instead of stdout\n\nNotes:\n    1. Project name, task name and socket name must be given.\n    2. Rows are the task's last rounds (at most 32), columns 64 address buckets.\n    3. `etmem engine eng_cmd ... -o json` asks the engine for JSON instead.\n";
