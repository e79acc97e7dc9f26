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
 * The lecturer's settings of a CAIPI block.
 *
 * @package    block_caipi
 * @copyright  2026 CAIPI
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

use block_caipi\local\activities;

/**
 * Which CAIPI activity the block shows, its height, the drawer and the title.
 */
class block_caipi_edit_form extends block_edit_form {
    /**
     * The block's own fields.
     *
     * @param MoodleQuickForm $mform The form.
     */
    protected function specific_definition($mform) {
        $mform->addElement('header', 'configheader', get_string('blocksettings', 'block'));

        $options = [0 => get_string('firstactivity', 'block_caipi')] + activities::options($this->page->course);
        $mform->addElement('select', 'config_cmid', get_string('target', 'block_caipi'), $options);
        $mform->addHelpButton('config_cmid', 'target', 'block_caipi');

        $mform->addElement('text', 'config_height', get_string('height', 'block_caipi'));
        $mform->setType('config_height', PARAM_INT);
        $mform->setDefault('config_height', (int)get_config('block_caipi', 'defaultheight') ?: 480);

        $mform->addElement('advcheckbox', 'config_drawer', get_string('drawer', 'block_caipi'));
        $mform->setDefault('config_drawer', 1);

        $mform->addElement('text', 'config_title', get_string('blocktitle', 'block_caipi'));
        $mform->setType('config_title', PARAM_TEXT);
    }
}
