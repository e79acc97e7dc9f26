<?php
// This file is part of CAIPI's Moodle block (block_caipi).
//
// This program is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// This program is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with this program.  If not, see <http://www.gnu.org/licenses/>.

/**
 * The CAIPI block: shows a CAIPI activity of the course inside the block and in a drawer.
 *
 * @package    block_caipi
 * @copyright  2026 CAIPI
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use block_caipi\local\activities;

/**
 * Shows CAIPI where students already look: the launch of a CAIPI activity of the course
 * (mod_lti's own launch.php, so the tool the admin registered signs the user in; no second
 * login, no second trust setup), embedded in the block, optionally also in a drawer.
 */
class block_caipi extends block_base {
    /** @var bool Whether the drawer script was added to the page already. */
    private static $scriptadded = false;

    /**
     * Sets the block's title.
     */
    public function init() {
        $this->title = get_string('pluginname', 'block_caipi');
    }

    /**
     * Uses the lecturer's title, when they set one.
     */
    public function specialization() {
        if (!empty($this->config->title)) {
            $this->title = format_string($this->config->title, true, ['context' => $this->context]);
        }
    }

    /**
     * The block belongs on course pages.
     *
     * @return array
     */
    public function applicable_formats() {
        return ['course-view' => true, 'site' => false, 'my' => false, 'mod' => false];
    }

    /**
     * Several blocks may show different CAIPI activities.
     *
     * @return bool
     */
    public function instance_allow_multiple() {
        return true;
    }

    /**
     * The block has site settings (settings.php).
     *
     * @return bool
     */
    public function has_config() {
        return true;
    }

    /**
     * The launch frame and drawer, or a message saying who can set CAIPI up.
     *
     * @return stdClass
     */
    public function get_content() {
        if ($this->content !== null) {
            return $this->content;
        }
        $this->content = new stdClass();
        $this->content->footer = '';
        $course = $this->page->course;
        $canmanage = has_capability('moodle/course:manageactivities', context_course::instance($course->id));
        if (!activities::tool_type_ids()) {
            $key = $canmanage ? 'notregistered' : 'notavailable';
            $this->content->text = html_writer::div(get_string($key, 'block_caipi'), 'block_caipi-message alert alert-info');
            return $this->content;
        }
        $cm = activities::choose($course, (int)($this->config->cmid ?? 0));
        if (!$cm) {
            $key = $canmanage ? 'noactivity' : 'notavailable';
            $this->content->text = html_writer::div(get_string($key, 'block_caipi'), 'block_caipi-message alert alert-info');
            return $this->content;
        }
        $this->content->text = $this->render_launch($cm);
        return $this->content;
    }

    /**
     * The embedded launch of ``$cm``, and the drawer when enabled.
     *
     * @param cm_info $cm The CAIPI activity.
     * @return string HTML
     */
    private function render_launch(cm_info $cm): string {
        $launch = new moodle_url('/mod/lti/launch.php', ['id' => $cm->id, 'triggerview' => 0]);
        $height = (int)($this->config->height ?? 0) ?: (int)get_config('block_caipi', 'defaultheight') ?: 480;
        $title = get_string('frametitle', 'block_caipi', $cm->get_formatted_name());
        $html = html_writer::tag('iframe', '', [
            'src' => $launch->out(false), 'title' => $title, 'class' => 'block_caipi-frame',
            'style' => "height: {$height}px", 'allow' => 'clipboard-write', 'loading' => 'lazy',
        ]);
        if ($this->config->drawer ?? true) {
            $drawerid = 'block_caipi-drawer-' . $this->instance->id;
            $html .= html_writer::tag('button', get_string('opendrawer', 'block_caipi'), [
                'type' => 'button', 'class' => 'btn btn-secondary block_caipi-open', 'data-block-caipi-open' => $drawerid,
            ]);
            $close = html_writer::tag('button', get_string('closedrawer', 'block_caipi'), [
                'type' => 'button', 'class' => 'btn btn-secondary block_caipi-close', 'data-block-caipi-close' => $drawerid,
            ]);
            $frame = html_writer::tag('iframe', '', [
                'data-src' => $launch->out(false), 'title' => $title, 'class' => 'block_caipi-drawer-frame',
                'allow' => 'clipboard-write',
            ]);
            $html .= html_writer::tag('aside', $close . $frame, [
                'id' => $drawerid, 'class' => 'block_caipi-drawer', 'hidden' => 'hidden', 'aria-label' => $title,
            ]);
            $this->add_drawer_script();
        }
        return $html;
    }

    /**
     * Opens and closes drawers; a drawer launches CAIPI the first time it opens.
     */
    private function add_drawer_script(): void {
        if (self::$scriptadded) {
            return;
        }
        self::$scriptadded = true;
        $this->page->requires->js_amd_inline("
            document.addEventListener('click', function(e) {
                var open = e.target.closest('[data-block-caipi-open]');
                var close = e.target.closest('[data-block-caipi-close]');
                var id = open ? open.dataset.blockCaipiOpen : (close ? close.dataset.blockCaipiClose : null);
                if (!id) {
                    return;
                }
                var drawer = document.getElementById(id);
                var frame = drawer.querySelector('iframe');
                // Above the page, not inside the block drawer's stacking context (whose
                // close button would show through); moved before its frame first loads.
                if (drawer.parentNode !== document.body) {
                    document.body.appendChild(drawer);
                }
                if (open && !frame.getAttribute('src')) {
                    frame.setAttribute('src', frame.dataset.src);
                }
                drawer.hidden = !open;
            });
        ");
    }
}
